//! `--vmlinux`, `--core`, `--qemu` and friends: where the kernel's memory
//! and debug info come from, opened into a [`Program`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use kpeek::debuginfo::KernelDebugInfo;
use kpeek::kernel::{OpenOptions, Program};
use kpeek::locate::{Origin, Search};
use kpeek::Error;

use super::Format;

/// Where the kernel's memory comes from, and its debug info.
#[derive(Args, Debug)]
pub struct Target {
    /// The kernel image with debug info (vmlinux). Optional: without it
    /// kpeek uses the kernel's own kallsyms and BTF, from the dump or the
    /// live guest.
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<PathBuf>,

    /// A crash dump: ELF vmcore, kdump-compressed or flattened, QEMU dump.
    #[arg(long, value_name = "FILE", conflicts_with = "qemu")]
    pub core: Option<PathBuf>,

    /// A live QEMU guest's gdbstub.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "kcore")]
    pub qemu: Option<String>,

    /// The kernel kpeek runs on, through /proc/kcore (as root); a PATH
    /// reads a file in its format instead.
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = kpeek::live::kcore::DEFAULT_PATH,
        conflicts_with = "core"
    )]
    pub kcore: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Use this KASLR offset (hex) instead of finding it.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    pub kaslr_offset: Option<u64>,

    /// Find KASLR as if the dump had no VMCOREINFO.
    #[arg(long)]
    pub ignore_vmcoreinfo: bool,

    /// Go on even if the vmlinux does not match the dump (offsets may be wrong).
    #[arg(long)]
    pub allow_mismatch: bool,

    /// Without --vmlinux, do not ask debuginfod ($DEBUGINFOD_URLS) for it
    /// (the distribution paths are still searched).
    #[arg(long)]
    pub no_debuginfod: bool,
}

/// A hexadecimal number, with or without `0x`.
pub fn parse_hex(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s}: {e}"))
}

/// What `kpeek rpc` hands each command: GDB's memory, the CPUs' program
/// counters and registers, and the vmlinux it opened once.
#[derive(Clone, Copy)]
pub struct GdbTarget<'a> {
    pub memory: &'a Arc<dyn kpeek::memory::MemorySource>,
    pub pcs: &'a [u64],
    pub cpus: &'a [kpeek::arch::Registers],
    pub vmlinux: Option<&'a Path>,
    pub debug: &'a Arc<KernelDebugInfo>,
    /// Without a vmlinux: the KASLR offset found with the kernel's kallsyms.
    pub kaslr_offset: Option<u64>,
}

/// Where memory comes from: the files and targets named on the command
/// line, or GDB, through `kpeek rpc`.
#[derive(Clone, Copy)]
pub enum Via<'a> {
    Cli,
    Gdb(GdbTarget<'a>),
}

impl Target {
    /// Open the program these options describe.
    pub fn open(&self, via: Via<'_>) -> kpeek::Result<Program> {
        self.open_with_origin(via).map(|(prog, _)| prog)
    }

    /// [`Target::open`], and where the vmlinux came from: given, or for a
    /// dump without --vmlinux found, downloaded or none (src/locate/).
    pub fn open_with_origin(&self, via: Via<'_>) -> kpeek::Result<(Program, Option<Origin>)> {
        let unnamed = match (&self.core, &self.kcore) {
            (Some(core), _) => Some(super::download_bar::Unnamed::Dump(core)),
            (None, Some(kcore)) => Some(super::download_bar::Unnamed::Kcore(kcore)),
            (None, None) => None,
        };
        if let (Via::Cli, None, Some(unnamed)) = (via, &self.vmlinux, unnamed) {
            let search = Search::from_env(!self.no_debuginfod);
            let opened = super::download_bar::open_unnamed(unnamed, &self.options(), &search)?;
            for notice in &opened.program.notices {
                super::output::warn(&notice.to_string());
            }
            return Ok((opened.program, Some(opened.origin)));
        }
        let origin = self.vmlinux.as_ref().map(|v| Origin::Given {
            path: v.display().to_string(),
        });
        Ok((self.open_given(via)?, origin))
    }

    pub fn options(&self) -> OpenOptions {
        OpenOptions {
            kaslr_offset: self.kaslr_offset,
            ignore_vmcoreinfo: self.ignore_vmcoreinfo,
            allow_mismatch: self.allow_mismatch,
        }
    }

    /// Open the program with the vmlinux given, or none.
    fn open_given(&self, via: Via<'_>) -> kpeek::Result<Program> {
        let options = self.options();
        if let Via::Gdb(gdb) = via {
            return self.open_through_gdb(gdb, options);
        }
        if let Some(address) = &self.qemu {
            // The vmlinux first: the guest stops while kpeek is connected.
            let debug = match &self.vmlinux {
                Some(vmlinux) => Some(KernelDebugInfo::open(vmlinux)?),
                None => None,
            };
            let qemu = kpeek::live::qemu_host::QemuLive::connect(
                address,
                std::time::Duration::from_secs(10),
            )?;
            if let Some(why) = qemu.fell_back_locally() {
                eprintln!(
                    "kpeek: note: reading the guest through the gdbstub, not QEMU's memory: {}",
                    kpeek::render::escape(why)
                );
            }
            let notes = qemu.notes();
            let qemu = Arc::new(qemu);
            return match debug {
                Some(debug) => Program::from_memory(debug, qemu, notes, &options),
                // No vmlinux: the guest's own kallsyms and BTF, found
                // through its page tables (a few MiB of reads).
                None => Program::from_memory_alone(qemu, notes, &[], Path::new(address), &options),
            };
        }
        if let Some(kcore) = &self.kcore {
            let core = Arc::new(kpeek::live::kcore::Kcore::open(kcore)?);
            let debug = match &self.vmlinux {
                Some(vmlinux) => Some(KernelDebugInfo::open(vmlinux)?),
                None => None,
            };
            return Program::from_kcore(debug, core, &options);
        }
        let prog =
            match (&self.vmlinux, &self.core) {
                (Some(vmlinux), Some(core)) => Program::open(vmlinux, core, &options)?,
                // No vmlinux: the dump's own kallsyms and BTF.
                (None, Some(core)) => Program::open_without_vmlinux(core, &options)?,
                _ => return Err(Error::Usage(
                    "give --core DUMP (and --vmlinux VMLINUX if you have it), --qemu HOST:PORT, or --kcore for the running kernel"
                        .into(),
                )),
            };
        for notice in &prog.notices {
            super::output::warn(&notice.to_string());
        }
        Ok(prog)
    }

    /// Inside `kpeek rpc`: GDB's memory, and the vmlinux it keeps open
    /// unless the command names another.
    fn open_through_gdb(&self, gdb: GdbTarget<'_>, options: OpenOptions) -> kpeek::Result<Program> {
        let debug = match &self.vmlinux {
            Some(v) if Some(v.as_path()) != gdb.vmlinux => Arc::new(KernelDebugInfo::open(v)?),
            _ => gdb.debug.clone(),
        };
        // No vmlinux: the offset kpeek rpc found with kallsyms, from
        // the image a CPU's program counter is in.
        let found = gdb.kaslr_offset.filter(|_| self.kaslr_offset.is_none());
        let options = OpenOptions {
            kaslr_offset: self.kaslr_offset.or(found),
            ..options
        };
        let mut prog =
            Program::from_virtual(debug, gdb.memory.clone(), gdb.pcs, gdb.cpus, &options)?;
        if found.is_some() {
            prog.located.method = kpeek::arch::KaslrMethod::ProgramCounter;
        }
        Ok(prog)
    }
}
