//! Finding the kernel in memory: the KASLR offset, `phys_base`, the direct
//! map and the kernel page table, from whatever the dump offers, always
//! verified by finding the vmlinux's own `linux_banner` where it must be.
//!
//! Sources, in order: a `--kaslr-offset` override; VMCOREINFO
//! (`KERNELOFFSET`, `NUMBER(phys_base)`); a kdump ELF's kernel-text
//! `PT_LOAD`; the CPU's page tables (`CR3`, as crash's `calc_kaslr_offset`
//! does: the first mapping at or above `__START_KERNEL_map` is `_text`).

use serde::Serialize;

use super::paging::{
    page_table_roots, page_walk, KernelLayout, KernelSpace, DEFAULT_PAGE_OFFSET, START_KERNEL_MAP,
};
use crate::addr::{LinkAddr, PhysAddr, VirtAddr};
use crate::memory::MemorySource;
use crate::notes::{Notes, VmcoreInfo};
use crate::{Error, Result};

/// What the vmlinux says about its own image (link-time addresses).
#[derive(Clone, Debug)]
pub struct ImageFacts {
    /// `_text`.
    pub text: LinkAddr,
    /// `_end`.
    pub end: LinkAddr,
    /// `linux_banner`.
    pub linux_banner: LinkAddr,
    /// The banner's bytes in the vmlinux, up to its NUL.
    pub banner: Vec<u8>,
    /// `init_top_pgt` (x86_64's `swapper_pg_dir`).
    pub init_top_pgt: Option<LinkAddr>,
    /// `page_offset_base`, the variable (with `RANDOMIZE_MEMORY`).
    pub page_offset_base: Option<LinkAddr>,
    /// `vmalloc_base`, the variable (with `RANDOMIZE_MEMORY`).
    pub vmalloc_base: Option<LinkAddr>,
}

impl ImageFacts {
    /// Gather the facts from a symbol table (`symbol`: link address by
    /// name) and the image's bytes (`bytes`: link address and length).
    pub fn gather(
        symbol: impl Fn(&str) -> Option<u64>,
        bytes: impl Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> Result<ImageFacts> {
        let need = |name: &str| {
            symbol(name).ok_or_else(|| Error::SymbolNotFound {
                name: name.to_owned(),
                table: "the vmlinux",
            })
        };
        let linux_banner = need("linux_banner")?;
        let raw = bytes(linux_banner, 512)
            .ok_or_else(|| Error::Kaslr("cannot read linux_banner in the vmlinux".into()))?;
        let len = raw
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error::Kaslr("linux_banner has no NUL".into()))?;
        Ok(ImageFacts {
            text: LinkAddr(need("_text")?),
            end: LinkAddr(need("_end")?),
            linux_banner: LinkAddr(linux_banner),
            banner: raw[..=len].to_vec(),
            init_top_pgt: symbol("init_top_pgt").map(LinkAddr),
            page_offset_base: symbol("page_offset_base").map(LinkAddr),
            vmalloc_base: symbol("vmalloc_base").map(LinkAddr),
        })
    }
}

/// How the KASLR offset was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KaslrMethod {
    /// Given on the command line.
    Override,
    /// VMCOREINFO's `KERNELOFFSET` and `NUMBER(phys_base)`.
    Vmcoreinfo,
    /// The kernel-text `PT_LOAD` of an ELF vmcore.
    ElfKernelLoad,
    /// The page tables of a CPU (`CR3` from the dump's CPU state).
    PageTables,
    /// A CPU's program counter in kernel text, checked against the banner.
    ProgramCounter,
    /// A search of the kernel-image window for the banner.
    BannerScan,
    /// `/proc/kcore`'s kernel-text segment (the running kernel).
    Kcore,
}

impl KaslrMethod {
    /// A human description.
    pub fn describe(self) -> &'static str {
        match self {
            KaslrMethod::Override => "--kaslr-offset",
            KaslrMethod::Vmcoreinfo => "VMCOREINFO",
            KaslrMethod::ElfKernelLoad => "the dump's kernel-text PT_LOAD",
            KaslrMethod::PageTables => "the CPU page tables (CR3)",
            KaslrMethod::ProgramCounter => "a CPU's program counter",
            KaslrMethod::BannerScan => "a search for the banner",
            KaslrMethod::Kcore => "/proc/kcore's kernel-text segment",
        }
    }
}

/// Inputs to [`locate`].
pub struct Clues<'a> {
    /// The dump's notes (VMCOREINFO, CPU state).
    pub notes: &'a Notes,
    /// ELF `PT_LOAD`s with kernel virtual addresses: (vaddr, paddr, size).
    pub virtual_loads: &'a [(VirtAddr, PhysAddr, u64)],
    /// A user-given KASLR offset.
    pub kaslr_override: Option<u64>,
    /// Ignore VMCOREINFO even when present.
    pub ignore_vmcoreinfo: bool,
    /// Accept a located kernel whose banner differs from the vmlinux's
    /// (a vmlinux from another build: offsets may be wrong).
    pub allow_mismatch: bool,
}

/// A located, verified kernel.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Located {
    /// The layout.
    pub layout: KernelLayout,
    /// How the KASLR offset was found.
    pub method: KaslrMethod,
}

/// Find the kernel, then prove it: the vmlinux's banner must be at its
/// run-time address. Each candidate that fails the proof is reported.
pub fn locate<M: MemorySource + Copy>(
    phys: M,
    facts: &ImageFacts,
    clues: &Clues<'_>,
) -> Result<Located> {
    let vmcoreinfo = clues
        .notes
        .vmcoreinfo
        .as_ref()
        .filter(|_| !clues.ignore_vmcoreinfo);
    let mut candidates: Vec<(KaslrMethod, u64, u64)> = Vec::new();
    let mut notes_why = Vec::new();

    if let Some(off) = clues.kaslr_override {
        let pb = vmcoreinfo
            .and_then(|v| v.number("phys_base"))
            .map(|p| p as u64);
        let pb = match pb {
            Some(pb) => Some(pb),
            None => from_page_tables(&phys, clues.notes, facts)?
                .first()
                .map(|&(_, pb)| pb),
        };
        match pb {
            Some(pb) => candidates.push((KaslrMethod::Override, off, pb)),
            None => {
                notes_why.push("--kaslr-offset given, but phys_base could not be found".to_owned())
            }
        }
    }
    if let Some(v) = vmcoreinfo {
        match (v.kernel_offset(), v.number("phys_base")) {
            (Some(off), Some(pb)) => candidates.push((KaslrMethod::Vmcoreinfo, off, pb as u64)),
            _ => notes_why.push("VMCOREINFO lacks KERNELOFFSET or NUMBER(phys_base)".to_owned()),
        }
    }
    // kdump's kernel-text PT_LOAD (the lowest in the kernel-image window).
    let text_load = clues
        .virtual_loads
        .iter()
        .filter(|(va, _, _)| va.0 >= START_KERNEL_MAP && va.0 < START_KERNEL_MAP + (1 << 30))
        .min_by_key(|(va, _, _)| va.0);
    if let Some(&(va, pa, _)) = text_load {
        let off = va.0.wrapping_sub(facts.text.0);
        let pb = pa.0.wrapping_sub(va.0 - START_KERNEL_MAP);
        candidates.push((KaslrMethod::ElfKernelLoad, off, pb));
    }
    for (off, pb) in from_page_tables(&phys, clues.notes, facts)? {
        candidates.push((KaslrMethod::PageTables, off, pb));
    }
    if candidates.is_empty() {
        notes_why.push(
            "the dump has no VMCOREINFO, no kernel-text PT_LOAD and no CPU state with CR3"
                .to_owned(),
        );
    }

    for (method, off, pb) in candidates {
        let layout = layout_for(phys, facts, vmcoreinfo, clues.notes, off, pb);
        let verified = layout.and_then(|l| match verify(phys, facts, l) {
            Ok(()) => Ok(l),
            Err(Error::Mismatch(_)) if clues.allow_mismatch => Ok(l),
            Err(e) => Err(e),
        });
        match verified {
            Ok(layout) => return Ok(Located { layout, method }),
            Err(e @ Error::Mismatch(_)) => return Err(e),
            Err(e) => notes_why.push(format!(
                "{} gave KASLR offset {off:#x}: {e}",
                method.describe()
            )),
        }
    }
    Err(Error::Kaslr(format!(
        "cannot locate the kernel in this dump: {}",
        notes_why.join("; ")
    )))
}

/// Find the kernel through a source of kernel *virtual* memory (GDB on
/// any target): offsets that put a CPU's program counter inside the kernel
/// image come first, then every 2 MiB step of the image window; each is
/// proven by the banner. `pcs` are the CPUs' program counters.
pub fn locate_virtual<M: MemorySource + Copy>(
    mem: M,
    facts: &ImageFacts,
    pcs: &[u64],
    kaslr_override: Option<u64>,
) -> Result<Located> {
    const ALIGN: u64 = 2 << 20;
    let mut candidates: Vec<(KaslrMethod, u64)> = Vec::new();
    if let Some(off) = kaslr_override {
        candidates.push((KaslrMethod::Override, off));
    }
    let size = facts.end.0 - facts.text.0;
    for &pc in pcs
        .iter()
        .filter(|&&pc| (START_KERNEL_MAP..START_KERNEL_MAP + (1 << 30)).contains(&pc))
    {
        // _text + off <= pc < _end + off, with off a multiple of 2 MiB.
        let hi = pc.wrapping_sub(facts.text.0) & !(ALIGN - 1);
        let mut off = hi;
        while pc.wrapping_sub(off) < facts.text.0 + size && candidates.len() < 4096 {
            candidates.push((KaslrMethod::ProgramCounter, off));
            off = off.wrapping_sub(ALIGN);
            if off > hi {
                break;
            }
        }
    }
    let mut off = 0;
    // The image lies within KERNEL_IMAGE_SIZE (1 GiB with KASLR) of __START_KERNEL_map.
    while facts
        .text
        .0
        .checked_add(off)
        .is_some_and(|t| t < START_KERNEL_MAP + (1 << 30))
    {
        candidates.push((KaslrMethod::BannerScan, off));
        off += ALIGN;
    }
    let mut tried = std::collections::HashSet::new();
    for (method, off) in candidates {
        if !tried.insert(off) {
            continue;
        }
        let mut layout = KernelLayout {
            kaslr_offset: off,
            phys_base: 0,
            page_offset_base: DEFAULT_PAGE_OFFSET,
            direct_map_end: DEFAULT_PAGE_OFFSET + (1 << 46),
            pgd: PhysAddr(0),
            levels: 4,
            sme_mask: 0,
            image: (facts.text.relocate(off), facts.end.relocate(off)),
        };
        let space = KernelSpace::over_virtual(mem, layout);
        let mut got = vec![0u8; facts.banner.len()];
        match space.read(facts.linux_banner.relocate(off), &mut got) {
            // A malformed reply from GDB is not "no banner here": say it.
            Err(e @ Error::Live(_)) => return Err(e),
            Err(_) => continue,
            Ok(()) if got != facts.banner => continue,
            Ok(()) => {}
        }
        if let Some(sym) = facts.page_offset_base {
            layout.page_offset_base = space.read_u64(sym.relocate(off))?;
        }
        if let Some(sym) = facts.vmalloc_base {
            layout.direct_map_end = space.read_u64(sym.relocate(off))?;
        }
        return Ok(Located { layout, method });
    }
    Err(Error::Kaslr(format!(
        "cannot find the vmlinux's banner in the target's memory at any KASLR offset: is this the kernel GDB is attached to? \
         (program counters {:x?})",
        pcs
    )))
}

/// The full layout for a candidate offset: direct map, page table, levels.
fn layout_for<M: MemorySource + Copy>(
    phys: M,
    facts: &ImageFacts,
    vmcoreinfo: Option<&VmcoreInfo>,
    notes: &Notes,
    kaslr_offset: u64,
    phys_base: u64,
) -> Result<KernelLayout> {
    let levels = match vmcoreinfo.and_then(|v| v.number("pgtable_l5_enabled")) {
        Some(1) => 5,
        Some(_) => 4,
        None if notes.qemu_cpus.iter().any(|c| c.cr4 & (1 << 12) != 0) => 5,
        None => 4,
    };
    let sme_mask = vmcoreinfo
        .and_then(|v| v.number("sme_mask"))
        .map_or(0, |m| m as u64);
    let image = (
        facts.text.relocate(kaslr_offset),
        facts.end.relocate(kaslr_offset),
    );
    let mut layout = KernelLayout {
        kaslr_offset,
        phys_base,
        page_offset_base: DEFAULT_PAGE_OFFSET,
        direct_map_end: DEFAULT_PAGE_OFFSET + (1 << 46),
        pgd: PhysAddr(0),
        levels,
        sme_mask,
        image,
    };
    let space = KernelSpace::new(phys, layout);
    if let Some(sym) = facts.page_offset_base {
        layout.page_offset_base = space.read_u64(sym.relocate(kaslr_offset))?;
    }
    // The direct map ends where vmalloc begins: the vmalloc_base variable
    // (RANDOMIZE_MEMORY), else VMCOREINFO's VMALLOC_START, else the default
    // layout's 64 TiB (4-level) or 4 PiB (5-level).
    let vmalloc = match facts.vmalloc_base {
        Some(sym) => Some(space.read_u64(sym.relocate(kaslr_offset))?),
        None => vmcoreinfo
            .and_then(|v| v.number("VMALLOC_START"))
            .map(|v| v as u64),
    };
    let arch_size = if levels == 5 { 1u64 << 52 } else { 1u64 << 46 };
    layout.direct_map_end = match vmalloc {
        Some(v) if v > layout.page_offset_base => {
            v.min(layout.page_offset_base.saturating_add(arch_size))
        }
        _ => layout.page_offset_base.saturating_add(arch_size),
    };
    let pgd = match facts.init_top_pgt {
        Some(sym) => space.translate(sym.relocate(kaslr_offset))?,
        None => PhysAddr(
            notes
                .qemu_cpus
                .iter()
                .map(|c| c.cr3)
                .find(|&c| c != 0)
                .unwrap_or(0)
                & !0x1fff,
        ),
    };
    layout.pgd = pgd;
    // VMCOREINFO's pgtable_l5_enabled, checked against the page tables: they
    // must map the banner where the kernel image is. A claim they disprove
    // (5 levels on a 4-level kernel made every stack "not mapped") gives way
    // to the number of levels they prove; the program notes the contradiction.
    if pgd.0 != 0 {
        let va = facts.linux_banner.relocate(kaslr_offset).0;
        let want = va.wrapping_sub(START_KERNEL_MAP).wrapping_add(phys_base);
        let maps = |levels: u8| {
            page_walk(&phys, pgd, levels, sme_mask, va)
                .ok()
                .map(|p| p.0)
                == Some(want)
        };
        let other = if levels == 5 { 4 } else { 5 };
        if !maps(levels) && maps(other) {
            layout.levels = other;
        }
    }
    Ok(layout)
}

/// The banner must be at its run-time address, byte for byte.
fn verify<M: MemorySource>(phys: M, facts: &ImageFacts, layout: KernelLayout) -> Result<()> {
    let space = KernelSpace::new(phys, layout);
    let mut got = vec![0u8; facts.banner.len()];
    space.read(facts.linux_banner.relocate(layout.kaslr_offset), &mut got)?;
    if got == facts.banner {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&got[..got.len().min(80)])
        .trim_end_matches('\0')
        .to_owned();
    if got.starts_with(b"Linux version ") {
        Err(Error::Mismatch(format!(
            "the vmlinux does not match the dump: the dump's banner is {shown:?}, the vmlinux's is {:?}",
            String::from_utf8_lossy(&facts.banner).trim_end_matches(['\0', '\n'])
        )))
    } else {
        Err(Error::Kaslr(format!(
            "no banner at the expected address (found {shown:?}): is the vmlinux the \
             kernel of this dump? (or the dump's VMCOREINFO or page tables are damaged)"
        )))
    }
}

/// crash's page-table method: walk a CPU's page tables for the first
/// mapping at or above `__START_KERNEL_map`. `cleanup_highmap()` removed
/// everything below `_text`, so that mapping is `_text`. Each CPU gives up
/// to two candidates: its CR3 as it is, and with the PTI user-PGD bit (12)
/// cleared, for a CPU stopped in user mode with page-table isolation; the
/// banner check picks the right one.
fn from_page_tables<M: MemorySource>(
    phys: &M,
    notes: &Notes,
    facts: &ImageFacts,
) -> Result<Vec<(u64, u64)>> {
    let mut found = Vec::new();
    for cpu in &notes.qemu_cpus {
        for (pgd, levels) in page_table_roots(cpu) {
            // Step through the kernel-image window 2 MiB at a time.
            let mut va = START_KERNEL_MAP;
            while va < START_KERNEL_MAP + (1 << 30) {
                // Unmapped is expected; a target that fails (Live, Io) is not.
                let walked = match page_walk(phys, pgd, levels, 0, va) {
                    Err(Error::Fault { .. }) => None,
                    Err(e) => return Err(e),
                    Ok(pa) => Some(pa),
                };
                if let Some(pa) = walked {
                    let candidate = (
                        va.wrapping_sub(facts.text.0),
                        pa.0.wrapping_sub(va - START_KERNEL_MAP),
                    );
                    if !found.contains(&candidate) {
                        found.push(candidate);
                    }
                    break;
                }
                va += 2 << 20;
            }
        }
    }
    Ok(found)
}
