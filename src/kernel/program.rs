//! A `Program`: a kernel's memory (a dump, a live QEMU, GDB), its debug
//! info, and where it was loaded.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::addr::{LinkAddr, VirtAddr};
use crate::dump::{Dump, Notes, Reader};
use crate::dwarf::DebugInfo;
use crate::memory::kaslr::{locate, Clues, ImageFacts, Located};
use crate::memory::x86_64::KernelSpace;
use crate::memory::MemorySource;
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
    pub debug: Arc<DebugInfo>,
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
        let debug = DebugInfo::open(vmlinux)?;
        let dump = Arc::new(Dump::open(core)?);
        Program::from_parts(debug, dump, options)
    }

    /// Assemble a program from an opened vmlinux and dump.
    pub fn from_parts(debug: DebugInfo, dump: Arc<Dump>, options: &OpenOptions) -> Result<Program> {
        let virtual_loads = match &dump.reader {
            Reader::Elf(e) => e.virtual_loads().to_vec(),
            Reader::Kdump(_) => Vec::new(),
        };
        let notes = dump.notes().clone();
        let memory: Arc<dyn MemorySource> = dump.clone();
        let mut prog = Program::assemble(Arc::new(debug), memory, notes, &virtual_loads, options)?;
        match &dump.reader {
            Reader::Elf(e) => {
                if e.truncated_bytes() > 0 {
                    prog.notices.push(format!(
                        "{}: the file is truncated: {} MiB of memory its headers describe are missing",
                        dump.path.display(),
                        e.truncated_bytes() >> 20
                    ));
                }
                if e.incomplete() {
                    prog.notices.push(format!(
                        "{}: the dump is marked incomplete (ELF e_flags)",
                        dump.path.display()
                    ));
                }
            }
            Reader::Kdump(k) => {
                if k.incomplete() {
                    prog.notices.push(format!(
                        "{}: the dump is marked incomplete (DUMP_DH_COMPRESSED_INCOMPLETE)",
                        dump.path.display()
                    ));
                }
            }
        }
        prog.dump = Some(dump);
        Ok(prog)
    }

    /// Assemble a program over any physical memory (a live target): `notes`
    /// carries what is known of the CPUs (QEMU-style CPU state with CR3).
    pub fn from_memory(
        debug: DebugInfo,
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
        debug: Arc<DebugInfo>,
        memory: Arc<dyn MemorySource>,
        pcs: &[u64],
        cpus: &[crate::dump::Registers],
        options: &OpenOptions,
    ) -> Result<Program> {
        let facts = image_facts(&debug)?;
        let located =
            crate::memory::kaslr::locate_virtual(&*memory, &facts, pcs, options.kaslr_offset)?;
        let space = KernelSpace::over_virtual(memory.clone(), located.layout);
        // The CPUs' registers as QEMU numbers its PRSTATUS notes: pid = CPU + 1.
        let notes = Notes {
            prstatus: cpus
                .iter()
                .enumerate()
                .map(|(i, regs)| crate::dump::PrStatus {
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

    /// The program once the kernel is found.
    fn located(
        debug: Arc<DebugInfo>,
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
        debug: Arc<DebugInfo>,
        memory: Arc<dyn MemorySource>,
        notes: Notes,
        virtual_loads: &[(VirtAddr, crate::addr::PhysAddr, u64)],
        options: &OpenOptions,
    ) -> Result<Program> {
        let facts = image_facts(&debug)?;
        if let (Some(want), Some(have)) = (
            notes.vmcoreinfo.as_ref().and_then(|v| v.build_id()),
            debug.build_id().map(<[u8]>::to_vec),
        ) {
            if !have.starts_with(&want) && !want.starts_with(&have) && !options.allow_mismatch {
                return Err(Error::Mismatch(format!(
                    "the vmlinux does not match the dump: build-id {} in the vmlinux, {} in the dump's VMCOREINFO \
                     (--allow-mismatch to go on anyway)",
                    hex(&have),
                    hex(&want)
                )));
            }
        }
        let clues = Clues {
            notes: &notes,
            virtual_loads,
            kaslr_override: options.kaslr_offset,
            ignore_vmcoreinfo: options.ignore_vmcoreinfo,
            allow_mismatch: options.allow_mismatch,
        };
        let located = locate(&*memory, &facts, &clues)?;
        let space = KernelSpace::new(memory.clone(), located.layout);
        Ok(Program::located(
            debug, memory, notes, space, located, &facts,
        ))
    }

    /// The run-time address of a global symbol (per-CPU symbols are offsets, see [`Program::per_cpu`]).
    pub fn symbol(&self, name: &str) -> Result<VirtAddr> {
        let sym = self
            .debug
            .symbol(name)
            .ok_or_else(|| Error::Kaslr(format!("the vmlinux has no symbol {name}")))?;
        Ok(sym.addr.relocate(self.located.layout.kaslr_offset))
    }

    /// `per_cpu_ptr(&name, cpu)`: the address of CPU `cpu`'s copy.
    pub fn per_cpu(&self, name: &str, cpu: u32) -> Result<VirtAddr> {
        let sym = self
            .debug
            .symbol(name)
            .ok_or_else(|| Error::Kaslr(format!("the vmlinux has no symbol {name}")))?;
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

/// What the vmlinux says about its own image: `_text`, `_end`, the banner
/// and its bytes, the page-table and memory-layout variables.
pub fn image_facts(debug: &DebugInfo) -> Result<ImageFacts> {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
