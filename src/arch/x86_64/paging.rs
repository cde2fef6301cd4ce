//! The x86_64 kernel address space: kernel virtual → physical.
//!
//! Fast paths for the kernel image (`__START_KERNEL_map` + `phys_base`) and
//! the direct map (`page_offset_base`), a 4- or 5-level page-table walk for
//! everything else (vmalloc, modules, per-CPU areas, user memory).

use serde::Serialize;

use super::regs::QemuCpuState;
use crate::addr::{PhysAddr, VirtAddr};
use crate::memory::MemorySource;
use crate::{Error, Result};

/// Where the kernel image is mapped (`__START_KERNEL_map`).
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// The direct map's base when it is not randomized (4-level paging, v4.20+).
pub const DEFAULT_PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// Physical address bits of a page-table entry.
const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE_SIZE: u64 = 4096;
const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;

/// CR4.LA57: the CPU walks 5-level page tables.
const CR4_LA57: u64 = 1 << 12;
/// With page-table isolation the kernel's PGD and the user's are a pair,
/// the user one at the kernel one + 4 KiB (bit 12 of CR3 set).
const PTI_USER_PGD: u64 = 1 << 12;

/// The page tables a CPU may have been using, with their levels: its CR3
/// as it is, and with the PTI user bit cleared (a CPU stopped in user mode
/// with page-table isolation has the user PGD, which maps little of the
/// kernel).
pub fn page_table_roots(cpu: &QemuCpuState) -> impl Iterator<Item = (PhysAddr, u8)> {
    let levels = if cpu.cr4 & CR4_LA57 != 0 { 5 } else { 4 };
    let pgd = cpu.cr3 & PTE_ADDR_MASK;
    let kernel_pgd = pgd & !PTI_USER_PGD;
    let second = (kernel_pgd != pgd).then_some(kernel_pgd);
    [Some(pgd), second]
        .into_iter()
        .flatten()
        .filter(|&p| p != 0)
        .map(move |p| (PhysAddr(p), levels))
}

/// Where the running kernel was, as kpeek worked it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KernelLayout {
    /// Run-time minus link-time address of the kernel image.
    pub kaslr_offset: u64,
    /// Physical load address minus link-time physical address (may be "negative").
    pub phys_base: u64,
    /// Base of the direct map of all physical memory.
    pub page_offset_base: u64,
    /// End of the direct map: the vmalloc area starts here (with
    /// `RANDOMIZE_MEMORY` it can be much closer than the architectural 64 TiB).
    pub direct_map_end: u64,
    /// Physical address of the kernel's top-level page table (`init_top_pgt`).
    pub pgd: PhysAddr,
    /// 4 or 5.
    pub levels: u8,
    /// AMD SME encryption bit(s) to clear from page-table entries.
    pub sme_mask: u64,
    /// Run-time `[_text, _end)` of the kernel image.
    pub image: (VirtAddr, VirtAddr),
}

/// Kernel virtual memory over a physical source.
#[derive(Debug)]
pub struct KernelSpace<M> {
    phys: M,
    layout: KernelLayout,
    /// The source takes kernel virtual addresses itself (GDB's memory):
    /// no translation, and no page tables to walk.
    passthrough: bool,
}

impl<M: MemorySource> KernelSpace<M> {
    /// An address space with a known layout.
    pub fn new(phys: M, layout: KernelLayout) -> KernelSpace<M> {
        KernelSpace {
            phys,
            layout,
            passthrough: false,
        }
    }

    /// An address space over a source that reads kernel *virtual* memory
    /// (a debugger's view): addresses pass through untranslated.
    pub fn over_virtual(source: M, layout: KernelLayout) -> KernelSpace<M> {
        KernelSpace {
            phys: source,
            layout,
            passthrough: true,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &KernelLayout {
        &self.layout
    }

    /// The physical memory underneath.
    pub fn phys(&self) -> &M {
        &self.phys
    }

    /// Translate a kernel virtual address.
    pub fn translate(&self, va: VirtAddr) -> Result<PhysAddr> {
        if self.passthrough {
            return Ok(PhysAddr(va.0));
        }
        let l = &self.layout;
        let v = va.0;
        if v >= l.image.0 .0 && v < l.image.1 .0 {
            return Ok(PhysAddr(
                v.wrapping_sub(START_KERNEL_MAP).wrapping_add(l.phys_base),
            ));
        }
        if v >= l.page_offset_base && v < l.direct_map_end {
            return Ok(PhysAddr(v - l.page_offset_base));
        }
        self.walk(l.pgd, va)
    }

    /// The end of the linearly mapped region (kernel image or direct map)
    /// that `v` is in.
    fn linear_end(&self, v: u64) -> Option<u64> {
        let l = &self.layout;
        if v >= l.image.0 .0 && v < l.image.1 .0 {
            Some(l.image.1 .0)
        } else if v >= l.page_offset_base && v < l.direct_map_end {
            Some(l.direct_map_end)
        } else {
            None
        }
    }

    /// Walk the page tables rooted at `pgd` (physical) for `va`.
    pub fn walk(&self, pgd: PhysAddr, va: VirtAddr) -> Result<PhysAddr> {
        if self.passthrough {
            return Err(Error::fault(
                "virtual",
                va.0,
                1,
                "this target gives no access to page tables",
            ));
        }
        page_walk(
            &self.phys,
            pgd,
            self.layout.levels,
            self.layout.sme_mask,
            va.0,
        )
    }

    /// Read kernel virtual memory; a page that cannot be translated or read
    /// fails the whole read with the first bad address.
    pub fn read(&self, va: VirtAddr, buf: &mut [u8]) -> Result<()> {
        if self.passthrough {
            // The debugger translates: one request, however many pages.
            return self
                .phys
                .read_phys(PhysAddr(va.0), buf)
                .map_err(|e| as_virtual(e, va.0, buf.len()));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = va.0.wrapping_add(done as u64);
            // The kernel image and the direct map translate linearly: one
            // physical read for the whole run; elsewhere page by page.
            let run_end = self
                .linear_end(at)
                .unwrap_or((at | (PAGE_SIZE - 1)).wrapping_add(1));
            let n = (run_end.wrapping_sub(at) as usize).min(buf.len() - done);
            let pa = self
                .translate(VirtAddr(at))
                .map_err(|e| as_virtual(e, at, buf.len() - done))?;
            self.phys
                .read_phys(pa, &mut buf[done..done + n])
                .map_err(|e| as_virtual(e, at, buf.len() - done))?;
            done += n;
        }
        Ok(())
    }

    /// Read memory through another page table (a process's `mm->pgd`).
    pub fn read_via(&self, pgd: PhysAddr, va: VirtAddr, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = va.0.wrapping_add(done as u64);
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buf.len() - done);
            let pa = self.walk(pgd, VirtAddr(at))?;
            self.phys.read_phys(pa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Read a little-endian u64.
    pub fn read_u64(&self, va: VirtAddr) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Report a physical fault by the virtual address that led to it.
fn as_virtual(e: Error, va: u64, len: usize) -> Error {
    match e {
        Error::Fault {
            space: "physical",
            addr,
            why,
            ..
        } => Error::fault("virtual", va, len, format!("physical {addr:#x} {why}")),
        other => other,
    }
}

/// The x86_64 page-table walk (4 or 5 levels, 1 GiB and 2 MiB pages).
pub fn page_walk(
    phys: &dyn MemorySource,
    pgd: PhysAddr,
    levels: u8,
    sme_mask: u64,
    va: u64,
) -> Result<PhysAddr> {
    let mask = PTE_ADDR_MASK & !sme_mask;
    let canonical_bits = if levels == 5 { 57 } else { 48 };
    let top = va >> (canonical_bits - 1);
    if top != 0 && top != (u64::MAX >> (canonical_bits - 1)) {
        return Err(Error::fault("virtual", va, 1, "not a canonical address"));
    }
    let mut table = pgd.0 & mask;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (u32::from(level) - 1);
        let index = (va >> shift) & 511;
        let entry = phys
            .read_phys_u64(PhysAddr(table + index * 8))
            .map_err(|e| {
                // A live target that went away is not a missing page.
                if !matches!(e, Error::Fault { .. }) {
                    return e;
                }
                Error::fault(
                    "virtual",
                    va,
                    1,
                    format!("page table at physical {table:#x} is not in the dump"),
                )
            })?;
        if entry & PRESENT == 0 {
            return Err(Error::fault("virtual", va, 1, "not mapped"));
        }
        if level == 1 || (entry & HUGE != 0 && (level == 2 || level == 3)) {
            let page_mask = (1u64 << shift) - 1;
            return Ok(PhysAddr((entry & mask & !page_mask) | (va & page_mask)));
        }
        table = entry & mask;
    }
    unreachable!("the loop returns at level 1")
}

/// A run of virtual memory mapped with one set of permissions, as the
/// page tables give it (the effective permission of every level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First virtual address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// Writable (RW at every level).
    pub writable: bool,
    /// Executable (NX at no level).
    pub executable: bool,
}

const RW: u64 = 1 << 1;
const NX: u64 = 1 << 63;

/// The mappings of `[start, end)` (kernel addresses) in the page tables
/// at `pgd`, runs of one permission merged, unmapped stretches left out.
/// Reads each page table on the way once, whole: for the kernel image a
/// few reads (the top tables, its PMD table, and PTE tables where it is
/// mapped with 4 KiB pages), at most 1,024 tables. A table that does not
/// read ends the walk with what was found before it.
pub fn mappings(
    phys: &dyn MemorySource,
    pgd: PhysAddr,
    levels: u8,
    sme_mask: u64,
    start: u64,
    end: u64,
) -> Vec<Mapping> {
    let mut walk = Walk {
        phys,
        mask: PTE_ADDR_MASK & !sme_mask,
        bits: if levels == 5 { 57 } else { 48 },
        range: (start, end),
        budget: 1024,
        out: Vec::new(),
    };
    walk.table(pgd.0, levels, 0, true, true);
    walk.out
}

/// [`mappings`]' state.
struct Walk<'a> {
    phys: &'a dyn MemorySource,
    mask: u64,
    /// Virtual address bits (48 or 57): addresses are sign-extended from the top one.
    bits: u32,
    range: (u64, u64),
    budget: u32,
    out: Vec<Mapping>,
}

impl Walk<'_> {
    /// Walks one table whose first entry maps `base`; false ends the walk.
    fn table(&mut self, table: u64, level: u8, base: u64, rw: bool, x: bool) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        let mut bytes = vec![0u8; 4096];
        if self
            .phys
            .read_phys(PhysAddr(table & self.mask), &mut bytes)
            .is_err()
        {
            return false;
        }
        let shift = 12 + 9 * (u32::from(level) - 1);
        let extend = 64 - self.bits;
        for (i, e) in bytes.chunks_exact(8).enumerate() {
            // Sign-extended: the top table's upper half is the kernel's.
            let va = ((base.wrapping_add((i as u64) << shift) << extend) as i64 >> extend) as u64;
            let last = va + ((1u64 << shift) - 1);
            if last < self.range.0 || va >= self.range.1 {
                continue;
            }
            let entry = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
            if entry & PRESENT == 0 {
                continue;
            }
            let writable = rw && entry & RW != 0;
            let executable = x && entry & NX == 0;
            let leaf = level == 1 || (entry & HUGE != 0 && (level == 2 || level == 3));
            if !leaf {
                if !self.table(entry & self.mask, level - 1, va, writable, executable) {
                    return false;
                }
                continue;
            }
            let s = va.max(self.range.0);
            let e = last.min(self.range.1.saturating_sub(1)) + 1;
            match self.out.last_mut() {
                Some(m) if m.end == s && m.writable == writable && m.executable == executable => {
                    m.end = e
                }
                _ => self.out.push(Mapping {
                    start: s,
                    end: e,
                    writable,
                    executable,
                }),
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Physical memory made of sparse 8-byte words.
    struct Words(HashMap<u64, u64>);

    impl MemorySource for Words {
        fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
            let v = self
                .0
                .get(&addr.0)
                .ok_or_else(|| Error::fault("physical", addr.0, buf.len(), "absent"))?;
            buf.copy_from_slice(&v.to_le_bytes()[..buf.len()]);
            Ok(())
        }
    }

    /// Physical memory made of whole 4 KiB pages.
    struct Pages(HashMap<u64, Vec<u8>>);

    impl MemorySource for Pages {
        fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
            let page = self
                .0
                .get(&(addr.0 & !0xfff))
                .ok_or_else(|| Error::fault("physical", addr.0, buf.len(), "absent"))?;
            let o = (addr.0 & 0xfff) as usize;
            let src = page
                .get(o..o + buf.len())
                .ok_or_else(|| Error::fault("physical", addr.0, buf.len(), "crosses a page"))?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    /// A kernel image as Linux maps it: text RX in 2 MiB pages, rodata R
    /// NX partly in 4 KiB pages, a freed gap, data RW NX.
    #[test]
    fn mappings_give_the_image_sections_by_permission() {
        let text = 0xffff_ffff_8200_0000u64;
        let mut m: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut set = |table: u64, index: u64, entry: u64| {
            let page = m.entry(table).or_insert_with(|| vec![0; 4096]);
            page[index as usize * 8..index as usize * 8 + 8].copy_from_slice(&entry.to_le_bytes());
        };
        let idx = |va: u64, shift: u32| (va >> shift) & 511;
        set(0x1000, idx(text, 39), 0x2000 | PRESENT | RW);
        set(0x2000, idx(text, 30), 0x3000 | PRESENT | RW);
        // text: two 2 MiB pages, RX
        set(0x3000, idx(text, 21), 0x100_0000 | PRESENT | HUGE);
        set(0x3000, idx(text, 21) + 1, 0x120_0000 | PRESENT | HUGE);
        // rodata: one 2 MiB page, then 4 KiB pages: 16 present, the rest freed
        set(0x3000, idx(text, 21) + 2, 0x140_0000 | PRESENT | HUGE | NX);
        set(0x3000, idx(text, 21) + 3, 0x4000 | PRESENT | RW);
        for i in 0..16 {
            set(0x4000, i, (0x160_0000 + (i << 12)) | PRESENT | NX);
        }
        // data: RW NX
        set(
            0x3000,
            idx(text, 21) + 4,
            0x180_0000 | PRESENT | HUGE | RW | NX,
        );
        let got = mappings(
            &Pages(m),
            PhysAddr(0x1000),
            4,
            0,
            START_KERNEL_MAP,
            START_KERNEL_MAP + (1 << 30),
        );
        let mb = 1 << 20;
        assert_eq!(
            got,
            [
                Mapping {
                    start: text,
                    end: text + 4 * mb,
                    writable: false,
                    executable: true
                },
                Mapping {
                    start: text + 4 * mb,
                    end: text + 6 * mb + 0x10000,
                    writable: false,
                    executable: false
                },
                Mapping {
                    start: text + 8 * mb,
                    end: text + 10 * mb,
                    writable: true,
                    executable: false
                },
            ]
        );
    }

    #[test]
    fn walks_4k_2m_and_1g_pages() {
        let va4k = 0xffff_c900_0012_3456u64;
        let va2m = 0xffff_ffff_8123_4567u64;
        let va1g = 0xffff_8880_4123_4567u64;
        let mut m = HashMap::new();
        let idx = |va: u64, shift: u32| (va >> shift) & 511;
        // 4 KiB: PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 → page 0x99000
        m.insert(0x1000 + idx(va4k, 39) * 8, 0x2000 | 1);
        m.insert(0x2000 + idx(va4k, 30) * 8, 0x3000 | 1);
        m.insert(0x3000 + idx(va4k, 21) * 8, 0x4000 | 1);
        m.insert(0x4000 + idx(va4k, 12) * 8, 0x99000 | 1 | (1 << 63));
        // 2 MiB page at 0x1200000
        m.insert(0x1000 + idx(va2m, 39) * 8, 0x5000 | 1);
        m.insert(0x5000 + idx(va2m, 30) * 8, 0x6000 | 1);
        m.insert(
            0x6000 + idx(va2m, 21) * 8,
            0x120_0000 | 1 | HUGE | (1 << 12),
        );
        // 1 GiB page at 0x4000_0000
        m.insert(0x1000 + idx(va1g, 39) * 8, 0x7000 | 1);
        m.insert(0x7000 + idx(va1g, 30) * 8, 0x4000_0000 | 1 | HUGE);
        let phys = Words(m);
        let walk = |va| page_walk(&phys, PhysAddr(0x1000), 4, 0, va);
        assert_eq!(walk(va4k).expect("4k"), PhysAddr(0x99456));
        assert_eq!(
            walk(va2m).expect("2m"),
            PhysAddr(0x120_0000 | (va2m & 0x1f_ffff))
        );
        assert_eq!(
            walk(va1g).expect("1g"),
            PhysAddr(0x4000_0000 | (va1g & 0x3fff_ffff))
        );
        let err = walk(0xffff_c900_0040_0000).expect_err("unmapped");
        assert_eq!(err.code(), "fault");
        assert!(walk(0x0000_9000_0000_0000).is_err(), "non-canonical");
    }
}
