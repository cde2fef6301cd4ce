//! A `Program`: a kernel's memory (a dump, a live QEMU, GDB), its debug
//! info, and where it was loaded.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::addr::{LinkAddr, VirtAddr};
use crate::arch::KernelSpace;
use crate::arch::{locate, Clues, ImageFacts, Located};
use crate::debuginfo::KernelDebugInfo;
use crate::dump::Dump;
use crate::memory::MemorySource;
use crate::notes::Notes;
use crate::{Error, Result};

/// How to open a program.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Use this KASLR offset instead of discovering it.
    pub kaslr_offset: Option<u64>,
    /// Pretend the dump has no VMCOREINFO (to test discovery).
    pub ignore_vmcoreinfo: bool,
    /// Go on with a vmlinux that does not match the dump.
    pub allow_mismatch: bool,
}

/// A kernel to look at: memory + debug info + KASLR.
pub struct Program {
    /// The debug info of the vmlinux (shared: `kpeek rpc` keeps one for
    /// every command).
    pub debug: Arc<KernelDebugInfo>,
    /// The dump, when the memory comes from one.
    pub dump: Option<Arc<Dump>>,
    /// Physical memory.
    pub memory: Arc<dyn MemorySource>,
    /// What the dump's notes (or the live target) say: VMCOREINFO, CPU registers.
    pub notes: Notes,
    /// Kernel virtual memory.
    pub space: KernelSpace<Arc<dyn MemorySource>>,
    /// Where the kernel was and how that was found.
    pub located: Located,
    /// The vmlinux's banner (it matched the dump's).
    pub banner: String,
    /// What is wrong with the dump as a whole (truncated, incomplete); the
    /// program still works, but reads of the missing parts will fault.
    pub notices: Vec<String>,
    /// `nr_cpu_ids` and `__per_cpu_offset[..nr_cpu_ids]`, read once.
    per_cpu: OnceLock<(u32, Option<Vec<u64>>)>,
}

impl Program {
    /// Open a dump with its vmlinux, find the kernel in it and check that
    /// the vmlinux is the kernel that was dumped.
    pub fn open(vmlinux: &Path, core: &Path, options: &OpenOptions) -> Result<Program> {
        let debug = KernelDebugInfo::open(vmlinux)?;
        let dump = Arc::new(Dump::open(core)?);
        Program::from_parts(debug, dump, options)
    }

    /// Assemble a program from an opened vmlinux and dump.
    pub fn from_parts(
        debug: KernelDebugInfo,
        dump: Arc<Dump>,
        options: &OpenOptions,
    ) -> Result<Program> {
        let notes = dump.notes().clone();
        let memory: Arc<dyn MemorySource> = dump.clone();
        let prog = Program::assemble(
            Arc::new(debug),
            memory,
            notes,
            dump.virtual_loads(),
            options,
        )?;
        Ok(prog.with_dump(dump))
    }

    /// Open a dump with no vmlinux at all: symbols from the kernel's own
    /// kallsyms tables and types from the BTF it keeps in memory
    /// (`__start_BTF` .. `__stop_BTF`, `CONFIG_DEBUG_INFO_BTF`). With the
    /// dump's VMCOREINFO, `KERNELOFFSET`, `NUMBER(phys_base)` and (Linux
    /// 6.0 and later) `SYMBOL(kallsyms_*)` are read from it; tables it does
    /// not name, and everything in a dump without it, are found by shape.
    pub fn open_without_vmlinux(core: &Path, options: &OpenOptions) -> Result<Program> {
        let dump = Arc::new(Dump::open(core)?);
        Program::from_dump_alone(dump, options)
    }

    /// [`Program::open_without_vmlinux`] on an opened dump.
    pub fn from_dump_alone(dump: Arc<Dump>, options: &OpenOptions) -> Result<Program> {
        let memory: Arc<dyn MemorySource> = dump.clone();
        let prog = Program::from_memory_alone(
            memory,
            dump.notes().clone(),
            dump.virtual_loads(),
            &dump.path,
            options,
        )?;
        Ok(prog.with_dump(dump))
    }

    /// [`Program::open_without_vmlinux`] over any physical memory: a dump,
    /// or a live target whose `notes` carry its CPUs' CR3. `name` names the
    /// target in messages. Without VMCOREINFO the kallsyms tables are found
    /// by their shape in the kernel's read-only data, which the page tables
    /// of the CPUs delimit (a few MiB, where the whole image is some 20
    /// MiB: through QEMU's gdbstub every 2 KiB is a packet), else in the
    /// whole image.
    pub fn from_memory_alone(
        memory: Arc<dyn MemorySource>,
        notes: Notes,
        virtual_loads: &[(VirtAddr, crate::addr::PhysAddr, u64)],
        name: &Path,
        options: &OpenOptions,
    ) -> Result<Program> {
        use crate::arch::paging::{KernelLayout, DEFAULT_PAGE_OFFSET, START_KERNEL_MAP};
        use crate::kernel::kallsyms::{Kallsyms, Location};
        let need = |what: &str| {
            Error::Unsupported(format!(
                "{}: without --vmlinux kpeek reads the kernel's own kallsyms and BTF, which needs {what}; \
                 give --vmlinux VMLINUX",
                name.display()
            ))
        };
        let info = notes
            .vmcoreinfo
            .as_ref()
            .filter(|_| !options.ignore_vmcoreinfo);
        // Where the kernel is: VMCOREINFO's KERNELOFFSET and phys_base, or
        // (without it) the first kernel-image mapping in a CPU's page
        // tables or the dump's kernel-text PT_LOAD, which is `_text`. The
        // link-time `_text` is then taken to be x86_64's default.
        let (offset, phys_base, loc, rodata) = match info {
            Some(info) => {
                // VMCOREINFO names the tables since Linux 5fd8fea935a1
                // ("vmcoreinfo: include kallsyms symbols", v6.0); before
                // that (and in any VMCOREINFO that leaves them out) they
                // are found by their shape, below, with VMCOREINFO's
                // KASLR offset.
                let loc = Location::from_vmcoreinfo(info);
                let offset = options
                    .kaslr_offset
                    .or(info.kernel_offset())
                    .ok_or_else(|| need("KERNELOFFSET in VMCOREINFO"))?;
                let phys_base = info
                    .number("phys_base")
                    .ok_or_else(|| need("NUMBER(phys_base) in VMCOREINFO"))?
                    as u64;
                // Where to search if VMCOREINFO does not name the tables:
                // the read-only data the page tables show, if any.
                let rodata = match loc {
                    Some(_) => None,
                    None => image_mapping(&*memory, &notes, virtual_loads).and_then(|m| m.rodata),
                };
                (offset, phys_base, loc, rodata)
            }
            None => {
                let map = image_mapping(&*memory, &notes, virtual_loads).ok_or_else(|| {
                    need("VMCOREINFO, or CPU state with CR3, or a kernel-text PT_LOAD")
                })?;
                (
                    map.text.wrapping_sub(DEFAULT_TEXT),
                    map.phys_base,
                    None,
                    map.rodata,
                )
            }
        };
        // The kernel image is mapped linearly at __START_KERNEL_map +
        // phys_base: enough to read kallsyms, which sit in .rodata.
        let boot = KernelSpace::new(
            memory.clone(),
            KernelLayout {
                kaslr_offset: offset,
                phys_base,
                page_offset_base: DEFAULT_PAGE_OFFSET,
                direct_map_end: DEFAULT_PAGE_OFFSET,
                pgd: crate::addr::PhysAddr(0),
                levels: 4,
                sme_mask: 0,
                image: (
                    VirtAddr(START_KERNEL_MAP),
                    VirtAddr(START_KERNEL_MAP + (1 << 30)),
                ),
            },
        );
        let read = |addr: u64, buf: &mut [u8]| boot.read(VirtAddr(addr), buf);
        let ks = match loc {
            Some(loc) => Kallsyms::read(&read, &loc)?,
            None => {
                // By their shape: in the read-only data the page tables
                // show (a few MiB), else anywhere in the image.
                let text = DEFAULT_TEXT.wrapping_add(offset);
                rodata
                    .and_then(|(start, end)| Location::search(&read, text, start, end - start))
                    .or_else(|| Location::search(&read, text, text, 256 << 20))
                    .ok_or_else(|| {
                        Error::Kaslr(format!(
                            "{}, and no kallsyms tables found in the kernel image: give --vmlinux VMLINUX",
                            if info.is_some() {
                                "VMCOREINFO does not name the kallsyms tables"
                            } else {
                                "no VMCOREINFO"
                            }
                        ))
                    })?
                    .1
            }
        };
        let debug = debug_from_kallsyms(&ks, offset, &read, name)?;
        let facts = facts_from_kallsyms(&debug, offset, &read)?;
        Program::locate_in(
            Arc::new(debug),
            memory,
            notes,
            virtual_loads,
            options,
            &facts,
        )
    }

    /// Records the dump and what is wrong with it as a whole.
    fn with_dump(mut self, dump: Arc<Dump>) -> Program {
        let health = dump.health();
        if health.truncated_bytes > 0 {
            self.notices.push(format!(
                "{}: the file is truncated: {} of memory its headers describe are missing",
                dump.path.display(),
                human_size(health.truncated_bytes)
            ));
        }
        for p in &health.problems {
            self.notices.push(format!("{}: {p}", dump.path.display()));
        }
        if let Some(how) = health.incomplete {
            self.notices.push(format!(
                "{}: the dump is marked incomplete ({how})",
                dump.path.display()
            ));
        }
        // VMCOREINFO values the dump disproves: refused, the proven value used.
        if let Some(vi) = dump.vmcoreinfo() {
            if let Some(size) = vi.page_size().filter(|&s| s != 4096) {
                self.notices.push(format!(
                    "VMCOREINFO says PAGESIZE={size}; an x86_64 kernel's pages are 4096 bytes: \
                     refused, 4096 used"
                ));
            }
            let levels = self.located.layout.levels;
            if let Some(l5) = vi.number("pgtable_l5_enabled") {
                if (l5 == 1) != (levels == 5) {
                    self.notices.push(format!(
                        "VMCOREINFO says pgtable_l5_enabled={l5}, but the page tables are \
                         {levels}-level: refused, {levels} levels used"
                    ));
                }
            }
        }
        self.dump = Some(dump);
        self
    }

    /// Assemble a program over any physical memory (a live target): `notes`
    /// carries what is known of the CPUs (QEMU-style CPU state with CR3).
    pub fn from_memory(
        debug: KernelDebugInfo,
        memory: Arc<dyn MemorySource>,
        notes: Notes,
        options: &OpenOptions,
    ) -> Result<Program> {
        Program::assemble(Arc::new(debug), memory, notes, &[], options)
    }

    /// Assemble a program over a source of kernel *virtual* memory (GDB's
    /// view of any target). `pcs` are the CPUs' program counters, which
    /// narrow the KASLR search. User memory (page tables) is out of reach.
    pub fn from_virtual(
        debug: Arc<KernelDebugInfo>,
        memory: Arc<dyn MemorySource>,
        pcs: &[u64],
        cpus: &[crate::arch::Registers],
        options: &OpenOptions,
    ) -> Result<Program> {
        let facts = match (image_facts(&debug), options.kaslr_offset) {
            (Ok(facts), _) => facts,
            // No vmlinux (`debug_from_virtual`): the facts from kallsyms,
            // the banner from memory, at the offset found with them.
            (Err(_), Some(offset))
                if debug.symbol_source() == crate::debuginfo::SymbolSource::Kallsyms =>
            {
                let read =
                    |addr: u64, buf: &mut [u8]| memory.read_phys(crate::addr::PhysAddr(addr), buf);
                facts_from_kallsyms(&debug, offset, &read)?
            }
            (Err(e), _) => return Err(e),
        };
        let located = crate::arch::locate_virtual(&*memory, &facts, pcs, options.kaslr_offset)?;
        let space = KernelSpace::over_virtual(memory.clone(), located.layout);
        // The CPUs' registers as QEMU numbers its PRSTATUS notes: pid = CPU + 1.
        let notes = Notes {
            prstatus: cpus
                .iter()
                .enumerate()
                .map(|(i, regs)| crate::arch::PrStatus {
                    pid: i as i32 + 1,
                    regs: *regs,
                })
                .collect(),
            ..Notes::default()
        };
        let mut prog = Program::located(debug, memory, notes, space, located, &facts);
        // GDB sends registers for its first threads; only the first
        // nr_cpu_ids are CPUs.
        let nr = prog.cpus().map_or(0, |c| c.len());
        prog.notes.prstatus.truncate(nr);
        Ok(prog)
    }

    /// The running kernel through `/proc/kcore` (kernel virtual memory):
    /// KASLR from its kernel-text segment, proven by the banner; with no
    /// vmlinux, the kernel's own kallsyms and BTF, read through it. A
    /// running system has no saved CPU registers: tasks on a CPU have no
    /// stack to unwind.
    pub fn from_kcore(
        debug: Option<KernelDebugInfo>,
        kcore: Arc<crate::live::kcore::Kcore>,
        options: &OpenOptions,
    ) -> Result<Program> {
        let text = kcore.text().ok_or_else(|| {
            Error::bad_file(
                kcore.path(),
                "no kernel-text segment (nothing mapped at __START_KERNEL_map)",
            )
        })?;
        let memory: Arc<dyn MemorySource> = kcore.clone();
        let (debug, offset) = match debug {
            Some(debug) => {
                let text_link = debug.symbol("_text").map(|s| s.addr.get());
                let offset = options
                    .kaslr_offset
                    .or(text_link.map(|t| text.wrapping_sub(t)));
                (Arc::new(debug), offset)
            }
            None => {
                let (debug, offset) = debug_from_virtual(&*memory, &[text])?;
                (
                    Arc::new(debug),
                    Some(options.kaslr_offset.unwrap_or(offset)),
                )
            }
        };
        let options = OpenOptions {
            kaslr_offset: offset,
            ..options.clone()
        };
        check_build_id(
            kcore.notes().vmcoreinfo.as_ref(),
            &debug,
            (
                "the running kernel",
                &format!("{}'s VMCOREINFO", kcore.path().display()),
            ),
            options.allow_mismatch,
        )?;
        let mut prog =
            Program::from_virtual(debug, memory, &[text], &[], &options).map_err(|e| match e {
                Error::Kaslr(_) => Error::Mismatch(format!(
                    "the vmlinux's banner is not in {} where its kernel-text segment puts it: \
                     the vmlinux is not the running kernel's",
                    kcore.path().display()
                )),
                e => e,
            })?;
        if prog.located.method == crate::arch::KaslrMethod::Override
            && options.kaslr_offset == offset
        {
            prog.located.method = crate::arch::KaslrMethod::Kcore;
        }
        prog.notes.vmcoreinfo = kcore.notes().vmcoreinfo.clone();
        Ok(prog)
    }

    /// Find the kernel in physical memory (and prove it with the banner),
    /// then build the program.
    fn locate_in(
        debug: Arc<KernelDebugInfo>,
        memory: Arc<dyn MemorySource>,
        notes: Notes,
        virtual_loads: &[(VirtAddr, crate::addr::PhysAddr, u64)],
        options: &OpenOptions,
        facts: &ImageFacts,
    ) -> Result<Program> {
        let clues = Clues {
            notes: &notes,
            virtual_loads,
            kaslr_override: options.kaslr_offset,
            ignore_vmcoreinfo: options.ignore_vmcoreinfo,
            allow_mismatch: options.allow_mismatch,
        };
        let located = locate(&*memory, facts, &clues)?;
        let space = KernelSpace::new(memory.clone(), located.layout);
        Ok(Program::located(
            debug, memory, notes, space, located, facts,
        ))
    }

    /// The program once the kernel is found.
    fn located(
        debug: Arc<KernelDebugInfo>,
        memory: Arc<dyn MemorySource>,
        notes: Notes,
        space: KernelSpace<Arc<dyn MemorySource>>,
        located: Located,
        facts: &ImageFacts,
    ) -> Program {
        let banner = String::from_utf8_lossy(&facts.banner)
            .trim_end_matches(['\0', '\n'])
            .to_owned();
        Program {
            debug,
            dump: None,
            memory,
            notes,
            space,
            located,
            banner,
            notices: Vec::new(),
            per_cpu: OnceLock::new(),
        }
    }

    fn assemble(
        debug: Arc<KernelDebugInfo>,
        memory: Arc<dyn MemorySource>,
        notes: Notes,
        virtual_loads: &[(VirtAddr, crate::addr::PhysAddr, u64)],
        options: &OpenOptions,
    ) -> Result<Program> {
        let facts = image_facts(&debug)?;
        check_build_id(
            notes.vmcoreinfo.as_ref(),
            &debug,
            ("the dump", "the dump's VMCOREINFO"),
            options.allow_mismatch,
        )?;
        Program::locate_in(debug, memory, notes, virtual_loads, options, &facts)
    }

    /// The run-time address of a global symbol (per-CPU symbols are offsets, see [`Program::per_cpu`]).
    pub fn symbol(&self, name: &str) -> Result<VirtAddr> {
        let sym = self
            .debug
            .symbol(name)
            .ok_or_else(|| Error::SymbolNotFound {
                name: name.to_owned(),
                table: "the vmlinux",
            })?;
        Ok(sym.addr.relocate(self.located.layout.kaslr_offset))
    }

    /// `per_cpu_ptr(&name, cpu)`: the address of CPU `cpu`'s copy.
    pub fn per_cpu(&self, name: &str, cpu: u32) -> Result<VirtAddr> {
        let sym = self
            .debug
            .symbol(name)
            .ok_or_else(|| Error::SymbolNotFound {
                name: name.to_owned(),
                table: "the vmlinux",
            })?;
        // Before 6.15, x86_64 per-CPU symbols are zero-based offsets: no KASLR.
        let base = if self.debug.is_percpu_symbol(name) {
            sym.addr.get()
        } else {
            sym.addr.relocate(self.located.layout.kaslr_offset).get()
        };
        self.per_cpu_ptr(base, cpu)
    }

    /// `per_cpu_ptr(ptr, cpu)` for a per-CPU pointer (a per-CPU symbol's
    /// address, or a `__percpu` pointer read from memory).
    pub fn per_cpu_ptr(&self, ptr: u64, cpu: u32) -> Result<VirtAddr> {
        let off = self
            .per_cpu_table()
            .1
            .as_ref()
            .and_then(|offsets| offsets.get(cpu as usize))
            .ok_or_else(|| {
                Error::Kaslr(format!(
                    "no per-CPU offset for CPU {cpu} (__per_cpu_offset unreadable)"
                ))
            })?;
        Ok(VirtAddr(ptr.wrapping_add(*off)))
    }

    fn per_cpu_table(&self) -> &(u32, Option<Vec<u64>>) {
        self.per_cpu.get_or_init(|| {
            let nr = self
                .symbol("nr_cpu_ids")
                .and_then(|a| self.read_u32(a))
                .unwrap_or(1)
                .clamp(1, 8192);
            let offsets = self
                .symbol("__per_cpu_offset")
                .and_then(|a| self.read_vec(a, 8 * nr as usize));
            let offsets = offsets.ok().map(|b| {
                b.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            });
            (nr, offsets)
        })
    }

    /// Read kernel memory.
    pub fn read(&self, addr: VirtAddr, buf: &mut [u8]) -> Result<()> {
        self.space.read(addr, buf)
    }

    /// Read `len` bytes of kernel memory.
    pub fn read_vec(&self, addr: VirtAddr, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.space.read(addr, &mut v)?;
        Ok(v)
    }

    /// Read a u64.
    pub fn read_u64(&self, addr: VirtAddr) -> Result<u64> {
        self.space.read_u64(addr)
    }

    /// Read a u32.
    pub fn read_u32(&self, addr: VirtAddr) -> Result<u32> {
        let mut b = [0u8; 4];
        self.space.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Possible CPUs: `0..nr_cpu_ids`.
    pub fn cpus(&self) -> Result<Vec<u32>> {
        Ok((0..self.per_cpu_table().0).collect())
    }
}

/// The largest BTF blob believed (a distro kernel's is about 6 MiB).
const MAX_BTF: u64 = 256 << 20;

/// x86_64's link-time `_text` (`__START_KERNEL_map` + the default
/// `CONFIG_PHYSICAL_START` of 16 MiB).
const DEFAULT_TEXT: u64 = 0xffff_ffff_8100_0000;

/// Where the kernel image is, without VMCOREINFO or a vmlinux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImageMap {
    /// Run-time `_text`.
    text: u64,
    phys_base: u64,
    /// Run-time `[start, end)` of the read-only data (`__start_rodata` ..
    /// `__end_rodata`), where the kallsyms tables and the BTF are: the
    /// first read-only, non-executable mapping after the text, when the
    /// page tables are at hand.
    rodata: Option<(u64, u64)>,
}

/// The run-time `_text` and `phys_base` without VMCOREINFO or a vmlinux:
/// the first mapping at or above `__START_KERNEL_map` in a CPU's page
/// tables (what crash's `calc_kaslr_offset` does), else the lowest
/// kernel-image `PT_LOAD` of an ELF dump. With the page tables, the
/// read-only data too: Linux maps its image text read-only and
/// executable, then the read-only data non-executable, then the data
/// writable (`mark_rodata_ro`), and unmaps the gaps between them.
fn image_mapping(
    phys: &dyn MemorySource,
    notes: &Notes,
    virtual_loads: &[(VirtAddr, crate::addr::PhysAddr, u64)],
) -> Option<ImageMap> {
    use crate::arch::paging::{mappings, page_table_roots, page_walk, START_KERNEL_MAP};
    const WINDOW: u64 = 1 << 30;
    let mut found = None;
    for cpu in &notes.qemu_cpus {
        // CR3, and the kernel half of a PTI pair.
        // Linux maps text read-only and executable, then read-only data
        // (kallsyms, BTF), then data writable (`mark_rodata_ro`).
        for (pgd, levels) in page_table_roots(cpu) {
            let maps = mappings(
                phys,
                pgd,
                levels,
                0,
                START_KERNEL_MAP,
                START_KERNEL_MAP + WINDOW,
            );
            let Some(first) = maps.first() else { continue };
            let Ok(pa) = page_walk(phys, pgd, levels, 0, first.start) else {
                continue;
            };
            // (Kernels that free the text/rodata gap leave it mapped
            // writable and non-executable: the first read-only run after
            // the text, not the next run.)
            let rodata = maps
                .iter()
                .skip_while(|m| !m.executable)
                .find(|m| !m.executable && !m.writable)
                .map(|m| (m.start, m.end));
            let map = ImageMap {
                text: first.start,
                phys_base: pa.0.wrapping_sub(first.start - START_KERNEL_MAP),
                rodata,
            };
            if rodata.is_some() {
                return Some(map);
            }
            found = found.or(Some(map));
        }
    }
    found.or_else(|| {
        virtual_loads
            .iter()
            .filter(|(va, _, _)| (START_KERNEL_MAP..START_KERNEL_MAP + WINDOW).contains(&va.0))
            .min_by_key(|(va, _, _)| va.0)
            .map(|&(va, pa, _)| ImageMap {
                text: va.0,
                phys_base: pa.0.wrapping_sub(va.0 - START_KERNEL_MAP),
                rodata: None,
            })
    })
}

/// Debug info with no vmlinux: the kernel's decoded kallsyms (run-time
/// addresses; `offset` is the KASLR offset) as the symbols, and the BTF
/// they delimit (`__start_BTF..__stop_BTF`, read through `read`) as the
/// types. `name` names the kernel's memory in messages.
fn debug_from_kallsyms(
    ks: &crate::kernel::kallsyms::Kallsyms,
    offset: u64,
    read: &crate::kernel::kallsyms::ReadFn<'_>,
    name: &Path,
) -> Result<KernelDebugInfo> {
    let (Some(start), Some(stop)) = (ks.lookup("__start_BTF"), ks.lookup("__stop_BTF")) else {
        return Err(Error::Unsupported(format!(
            "{}: without --vmlinux kpeek reads the kernel's own kallsyms and BTF, which needs \
             a kernel built with CONFIG_DEBUG_INFO_BTF (no __start_BTF in kallsyms); give --vmlinux VMLINUX",
            name.display()
        )));
    };
    let len = stop
        .addr
        .checked_sub(start.addr)
        .filter(|&l| l > 0 && l <= MAX_BTF);
    let Some(len) = len else {
        return Err(Error::BadFile {
            path: name.to_path_buf(),
            what: format!(
                "__start_BTF {:#x} .. __stop_BTF {:#x} is not a plausible BTF size",
                start.addr, stop.addr
            ),
        });
    };
    let mut btf = vec![0u8; len as usize];
    read(start.addr, &mut btf)?;
    let origin = name.join("__start_BTF");
    let debug =
        KernelDebugInfo::from_btf_bytes(&origin, btf, crate::debuginfo::btf::DEFAULT_CACHELINE)?;
    // Link-time addresses, as a vmlinux would give them (per-CPU `A`
    // symbols are offsets: as they are).
    debug.use_kallsyms(
        ks.symbols()
            .iter()
            .map(|s| {
                let addr = if s.kind == 'A' {
                    s.addr
                } else {
                    s.addr.wrapping_sub(offset)
                };
                (s.name.clone(), LinkAddr(addr))
            })
            .collect(),
    );
    Ok(debug)
}

/// The image facts a vmlinux would give, from kallsyms; the banner is the
/// kernel's own (read at `linux_banner` + `offset`), so the usual proof
/// only checks the layout.
fn facts_from_kallsyms(
    debug: &KernelDebugInfo,
    offset: u64,
    read: &crate::kernel::kallsyms::ReadFn<'_>,
) -> Result<ImageFacts> {
    let sym = |name: &str| debug.symbol(name).map(|s| s.addr.get());
    let need_sym = |name: &str| {
        sym(name).ok_or_else(|| Error::SymbolNotFound {
            name: name.to_owned(),
            table: "kallsyms",
        })
    };
    let linux_banner = need_sym("linux_banner")?;
    let mut banner = vec![0u8; 512];
    read(linux_banner.wrapping_add(offset), &mut banner)?;
    let nul = banner
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Error::Kaslr("linux_banner has no NUL".into()))?;
    banner.truncate(nul + 1);
    Ok(ImageFacts {
        text: LinkAddr(need_sym("_text")?),
        end: LinkAddr(need_sym("_end")?),
        linux_banner: LinkAddr(linux_banner),
        banner,
        init_top_pgt: sym("init_top_pgt").map(LinkAddr),
        page_offset_base: sym("page_offset_base").map(LinkAddr),
        vmalloc_base: sym("vmalloc_base").map(LinkAddr),
    })
}

/// Debug info with no vmlinux over kernel *virtual* memory (GDB's view,
/// `kpeek rpc` with nothing loaded in GDB): the kernel image is the one a
/// CPU's program counter is in, `_text` where its mapping starts (x86_64
/// maps nothing just below it, and KASLR moves it in 2 MiB steps); its
/// kallsyms tables are found there by their shape, its BTF read from
/// `__start_BTF`. Gives the debug info and the KASLR offset. Reads the
/// image up to the tables (some MiB) once.
pub fn debug_from_virtual(
    memory: &dyn MemorySource,
    pcs: &[u64],
) -> Result<(KernelDebugInfo, u64)> {
    use crate::arch::paging::START_KERNEL_MAP;
    use crate::kernel::kallsyms::Location;
    const STEP: u64 = 2 << 20;
    const WINDOW: u64 = 1 << 30;
    let read = |addr: u64, buf: &mut [u8]| memory.read_phys(crate::addr::PhysAddr(addr), buf);
    let readable = |addr: u64| read(addr, &mut [0u8; 1]).is_ok();
    let mut tried = Vec::new();
    for &pc in pcs {
        if !(START_KERNEL_MAP..START_KERNEL_MAP + WINDOW).contains(&pc) {
            continue; // user mode, or a module
        }
        let mut text = pc & !(STEP - 1);
        while text > START_KERNEL_MAP && readable(text - 1) {
            text -= STEP;
        }
        if tried.contains(&text) {
            continue;
        }
        tried.push(text);
        if let Some((_, ks)) = Location::search(&read, text, text, 256 << 20) {
            let offset = text.wrapping_sub(DEFAULT_TEXT);
            let debug = debug_from_kallsyms(&ks, offset, &read, Path::new("kernel memory"))?;
            return Ok((debug, offset));
        }
    }
    Err(Error::Kaslr(if tried.is_empty() {
        "no CPU is in the kernel's text (their program counters): cannot find the kernel without a vmlinux; stop the guest in the kernel, or load the vmlinux".into()
    } else {
        "no kallsyms tables in the kernel image the CPUs are in: load the vmlinux (file vmlinux)"
            .into()
    }))
}

/// What the vmlinux says about its own image: `_text`, `_end`, the banner
/// and its bytes, the page-table and memory-layout variables.
pub fn image_facts(debug: &KernelDebugInfo) -> Result<ImageFacts> {
    ImageFacts::gather(
        |name| debug.symbol(name).map(|s| s.addr.get()),
        |addr, len| {
            // linux_banner may sit close to the end of .rodata: try shorter reads.
            [len, 256, 128]
                .into_iter()
                .find_map(|l| debug.section_data(LinkAddr(addr), l).map(<[u8]>::to_vec))
        },
    )
}

/// The vmlinux's build ID against the one VMCOREINFO names; either
/// missing passes. `(what, where)` name the kernel and its VMCOREINFO in
/// the message.
fn check_build_id(
    vmcoreinfo: Option<&crate::notes::VmcoreInfo>,
    debug: &KernelDebugInfo,
    (what, place): (&str, &str),
    allow_mismatch: bool,
) -> Result<()> {
    let (Some(want), Some(have)) = (vmcoreinfo.and_then(|v| v.build_id()), debug.build_id()) else {
        return Ok(());
    };
    if have.starts_with(&want) || want.starts_with(have) || allow_mismatch {
        return Ok(());
    }
    Err(Error::Mismatch(format!(
        "the vmlinux does not match {what}: build-id {} in the vmlinux, {} in {place} \
         (--allow-mismatch to go on anyway)",
        hex(have),
        hex(&want)
    )))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Read kernel virtual memory; when [`Program::read`] fails, walk the
/// kernel's page tables (`init_top_pgt`) for it.
///
/// `Program::read` translates everything above `page_offset_base` as the
/// direct map, up to 64 TiB. With `CONFIG_RANDOMIZE_MEMORY` the vmalloc area
/// (where `CONFIG_VMAP_STACK` puts kernel stacks) starts right after the
/// direct map, well inside those 64 TiB, so stacks come out as physical
/// addresses far beyond RAM and fault. The page-table walk is always right.
pub fn read_kernel(prog: &Program, addr: VirtAddr, buf: &mut [u8]) -> Result<()> {
    match prog.read(addr, buf) {
        Ok(()) => Ok(()),
        Err(first) => prog
            .space
            .read_via(prog.located.layout.pgd, addr, buf)
            .map_err(|_| first),
    }
}

/// `256 KiB`, `3 MiB`, `17 bytes`: never "0 MiB" for what is not nothing.
fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 || b >= 16 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b.div_ceil(1 << 10)),
        b => format!("{b} bytes"),
    }
}
