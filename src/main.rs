//! The `kpeek` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kpeek::render::escape;
use kpeek::Error;

/// Look inside a Linux kernel, live or dead.
///
/// kpeek reads a crash dump (ELF vmcore, kdump-compressed, QEMU dumps) or a
/// live QEMU guest, together with the kernel's vmlinux, and shows what the
/// kernel was doing.
#[derive(Parser, Debug)]
#[command(name = "kpeek", version, about, long_about)]
struct Cli {
    /// Say more on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// Where the kernel's memory comes from, and its debug info.
#[derive(Args, Debug)]
struct Target {
    /// The kernel image with debug info (vmlinux). Optional: without it
    /// kpeek uses the kernel's own kallsyms and BTF, from the dump or the
    /// live guest.
    #[arg(long, value_name = "FILE")]
    vmlinux: Option<PathBuf>,

    /// A crash dump: ELF vmcore, kdump-compressed or flattened, QEMU dump.
    #[arg(long, value_name = "FILE", conflicts_with = "qemu")]
    core: Option<PathBuf>,

    /// A live QEMU guest's gdbstub.
    #[arg(long, value_name = "HOST:PORT")]
    qemu: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,

    /// Use this KASLR offset (hex) instead of finding it.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    kaslr_offset: Option<u64>,

    /// Find KASLR as if the dump had no VMCOREINFO.
    #[arg(long)]
    ignore_vmcoreinfo: bool,

    /// Go on even if the vmlinux does not match the dump (offsets may be wrong).
    #[arg(long)]
    allow_mismatch: bool,
}

/// `kpeek read` options.
#[derive(Args, Debug)]
struct ReadArgs {
    #[command(flatten)]
    target: Target,
    /// A kernel virtual address (hex), a symbol, or with --phys a physical address.
    address: String,
    /// How many bytes (decimal, or hex with 0x).
    #[arg(default_value_t = 64, value_parser = parse_len)]
    len: usize,
    /// The address is physical.
    #[arg(long)]
    phys: bool,
}

fn parse_len(s: &str) -> Result<usize, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => usize::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

fn parse_hex(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s}: {e}"))
}

impl Target {
    /// Open the program these options describe.
    fn open(&self, via: Via<'_>) -> kpeek::Result<kpeek::kernel::Program> {
        let options = kpeek::kernel::OpenOptions {
            kaslr_offset: self.kaslr_offset,
            ignore_vmcoreinfo: self.ignore_vmcoreinfo,
            allow_mismatch: self.allow_mismatch,
        };
        if let Via::Gdb(gdb) = via {
            // The vmlinux kpeek rpc keeps open, unless the command names another.
            let debug = match &self.vmlinux {
                Some(v) if Some(v.as_path()) != gdb.vmlinux => {
                    std::sync::Arc::new(kpeek::dwarf::DebugInfo::open(v)?)
                }
                _ => gdb.debug.clone(),
            };
            // No vmlinux: the offset kpeek rpc found with kallsyms, from
            // the image a CPU's program counter is in.
            let found = gdb.kaslr_offset.filter(|_| self.kaslr_offset.is_none());
            let options = kpeek::kernel::OpenOptions {
                kaslr_offset: self.kaslr_offset.or(found),
                ..options
            };
            let mut prog = kpeek::kernel::Program::from_virtual(
                debug,
                gdb.memory.clone(),
                gdb.pcs,
                gdb.cpus,
                &options,
            )?;
            if found.is_some() {
                prog.located.method = kpeek::memory::kaslr::KaslrMethod::ProgramCounter;
            }
            return Ok(prog);
        }
        if let Some(address) = &self.qemu {
            // The vmlinux first: the guest stops while kpeek is connected.
            let debug = match &self.vmlinux {
                Some(vmlinux) => Some(kpeek::dwarf::DebugInfo::open(vmlinux)?),
                None => None,
            };
            let qemu =
                kpeek::memory::qemu::QemuGdb::connect(address, std::time::Duration::from_secs(10))?;
            let notes = qemu.notes();
            let qemu = std::sync::Arc::new(qemu);
            return match debug {
                Some(debug) => kpeek::kernel::Program::from_memory(debug, qemu, notes, &options),
                // No vmlinux: the guest's own kallsyms and BTF, found
                // through its page tables (a few MiB of reads).
                None => kpeek::kernel::Program::from_memory_alone(
                    qemu,
                    notes,
                    &[],
                    std::path::Path::new(address),
                    &options,
                ),
            };
        }
        let prog = match (&self.vmlinux, &self.core) {
            (Some(vmlinux), Some(core)) => kpeek::kernel::Program::open(vmlinux, core, &options)?,
            // No vmlinux: the dump's own kallsyms and BTF.
            (None, Some(core)) => kpeek::kernel::Program::open_without_vmlinux(core, &options)?,
            _ => {
                return Err(Error::Usage(
                    "give --core DUMP (and --vmlinux VMLINUX if you have it), or --qemu HOST:PORT"
                        .into(),
                ))
            }
        };
        for notice in &prog.notices {
            eprintln!("kpeek: warning: {}", escape(&notice.to_string()));
        }
        Ok(prog)
    }
}

/// `kpeek ps` options.
#[derive(Args, Debug)]
struct PsArgs {
    #[command(flatten)]
    target: Target,
    /// Every thread, not only processes.
    #[arg(short = 'T', long)]
    threads: bool,
    /// `kpeek` (the default table) or `lx` (exactly the kernel's lx-ps).
    #[arg(long, value_enum, default_value_t = PsStyle::Kpeek)]
    style: PsStyle,
    /// Only these pids (thread or process ids).
    #[arg(short, long, value_name = "PID", value_delimiter = ',')]
    pid: Vec<i32>,
    /// Only tasks whose comm contains NAME.
    #[arg(short = 'n', long, value_name = "NAME")]
    name: Option<String>,
    /// Only tasks in these states (letters, e.g. DZ).
    #[arg(long, value_name = "LETTERS")]
    state: Option<String>,
    /// Only user tasks.
    #[arg(long, conflicts_with = "kernel")]
    user: bool,
    /// The process tree (parents and children), like pstree.
    #[arg(long, conflicts_with_all = ["threads", "style"])]
    tree: bool,
    /// Only kernel threads.
    #[arg(long)]
    kernel: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PsStyle {
    /// kpeek's table.
    Kpeek,
    /// The kernel's own `lx-ps` output.
    Lx,
}

/// `kpeek bt` options.
#[derive(Args, Debug)]
struct BtArgs {
    #[command(flatten)]
    target: Target,
    /// Thread ids to trace.
    #[arg(value_name = "PID")]
    pids: Vec<i32>,
    /// Every task.
    #[arg(short, long, conflicts_with = "pids")]
    all: bool,
    /// What each CPU was doing, the panicking CPU first (the default when
    /// no PID is given).
    #[arg(long)]
    cpus: bool,
    /// `kpeek` (every frame, pt_regs crossings, source lines and inlined
    /// functions) or `proc` (exactly what /proc/PID/stack shows).
    #[arg(long, value_enum, default_value_t = BtStyle::Kpeek)]
    style: BtStyle,
    /// Leave out source lines and inlined functions.
    #[arg(long)]
    no_lines: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BtStyle {
    /// kpeek's detailed frames.
    Kpeek,
    /// The kernel's `/proc/PID/stack` lines.
    Proc,
}

/// `kpeek dmesg` options.
#[derive(Args, Debug)]
struct DmesgArgs {
    #[command(flatten)]
    target: Target,
    /// `<prio>` before each line (facility * 8 + level), like `dmesg -r`.
    #[arg(short, long)]
    raw: bool,
    /// The caller id after the timestamp (`[  T123]` a task, `[   C1]` a CPU),
    /// as kernels built with CONFIG_PRINTK_CALLER print it.
    #[arg(long)]
    caller: bool,
    /// `kpeek` (like dmesg) or `lx` (exactly the kernel's lx-dmesg).
    #[arg(long, value_enum, default_value_t = PsStyle::Kpeek)]
    style: PsStyle,
}

/// `kpeek lsmod` options.
#[derive(Args, Debug)]
struct LsmodArgs {
    #[command(flatten)]
    target: Target,
    /// `kpeek` (like lsmod), `proc` (exactly /proc/modules) or `lx` (the kernel's lx-lsmod).
    #[arg(long, value_enum, default_value_t = LsmodStyle::Kpeek)]
    style: LsmodStyle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LsmodStyle {
    /// Like lsmod, with state, address and taints.
    Kpeek,
    /// Exactly /proc/modules.
    Proc,
    /// The kernel's own `lx-lsmod` output.
    Lx,
}

/// `kpeek cpus` options.
#[derive(Args, Debug)]
struct CpusArgs {
    #[command(flatten)]
    target: Target,
    /// `kpeek` (a row per CPU) or `lx` (exactly the kernel's lx-cpus: the CPU masks).
    #[arg(long, value_enum, default_value_t = PsStyle::Kpeek)]
    style: PsStyle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Tables for people.
    Human,
    /// The stable JSON contract (docs/json-schema.md).
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarise a dump or live kernel: release, uptime, command line, panic, taint, memory, CPUs.
    Info(Target),
    /// The kernel log (the printk ring buffer), like dmesg.
    Dmesg(DmesgArgs),
    /// Loaded modules, like lsmod or /proc/modules.
    Lsmod(LsmodArgs),
    /// Each CPU: online, current task, idle, runqueue length.
    Cpus(CpusArgs),
    /// Hexdump kernel memory: the debugger's debugging tool.
    Read(ReadArgs),
    /// List processes (or every thread with --threads).
    Ps(PsArgs),
    /// List every thread like the kernel books' `thrd_showall`.
    Threads(Target),
    /// Show struct layouts from the vmlinux DWARF (or BTF), like `pahole -C`.
    Pahole {
        /// The kernel image with debug info (vmlinux).
        /// Inside GDB (kpeek.py) without one: the running kernel's own BTF.
        #[arg(long, value_name = "FILE")]
        vmlinux: Option<PathBuf>,
        /// Read the types from BTF instead: a vmlinux with a .BTF section,
        /// or a raw BTF file like /sys/kernel/btf/vmlinux (like `pahole -F btf`).
        #[arg(long, value_name = "FILE", conflicts_with = "vmlinux")]
        btf: Option<PathBuf>,
        /// Struct, union, typedef or enum names, comma-separated (like pahole's -C).
        #[arg(
            short = 'C',
            long = "class-name",
            value_name = "NAMES",
            value_delimiter = ','
        )]
        class_name: Vec<String>,
        /// Struct, union, typedef or enum names (also comma-separated).
        #[arg(required_unless_present_any = ["class_name", "all"], value_delimiter = ',')]
        names: Vec<String>,
        /// Every struct and union, as `pahole` with no -C prints them.
        #[arg(long, conflicts_with_all = ["class_name", "names"])]
        all: bool,
        /// Offsets and sizes in hexadecimal.
        #[arg(long)]
        hex: bool,
        /// Expand named member types inline.
        #[arg(short = 'E', long)]
        expand_types: bool,
        /// Cacheline size for the boundary markers.
        #[arg(long, value_name = "BYTES", default_value_t = 64)]
        cacheline_size: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Kernel backtraces: of tasks (PIDs or --all), or of every CPU (--cpus, the default).
    Bt(BtArgs),
    /// Serve a crash dump to GDB as a remote target, every task a thread.
    Serve(ServeArgs),
    /// Speak JSON lines on stdin/stdout (used by gdb-scripts/kpeek.py).
    Rpc {
        /// The kernel image with debug info (the one GDB has loaded); without
        /// it, the kernel's own kallsyms and BTF, read through GDB.
        #[arg(long, value_name = "FILE")]
        vmlinux: Option<PathBuf>,
    },
}

/// What `kpeek rpc` hands each command: GDB's memory, the CPUs' program
/// counters and registers, and the vmlinux it opened once.
#[derive(Clone, Copy)]
struct GdbTarget<'a> {
    memory: &'a std::sync::Arc<dyn kpeek::memory::MemorySource>,
    pcs: &'a [u64],
    cpus: &'a [kpeek::dump::Registers],
    vmlinux: Option<&'a std::path::Path>,
    debug: &'a std::sync::Arc<kpeek::dwarf::DebugInfo>,
    /// Without a vmlinux: the KASLR offset found with the kernel's kallsyms.
    kaslr_offset: Option<u64>,
}

/// Where memory comes from: the files and targets named on the command
/// line, or GDB, through `kpeek rpc`.
#[derive(Clone, Copy)]
enum Via<'a> {
    Cli,
    Gdb(GdbTarget<'a>),
}

impl Command {
    fn run(self, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
        match self {
            Command::Info(target) => info(target, out, via),
            Command::Dmesg(args) => dmesg(args, out, via),
            Command::Lsmod(args) => lsmod(args, out, via),
            Command::Cpus(args) => cpus(args, out, via),
            Command::Read(args) => read(args, out, via),
            Command::Ps(args) => ps(args, out, via),
            Command::Threads(target) => threads(target, out, via),
            Command::Pahole {
                vmlinux,
                btf,
                class_name,
                names,
                all,
                hex,
                expand_types,
                cacheline_size,
                format,
            } => {
                let names: Vec<String> = class_name.into_iter().chain(names).collect();
                let opts = kpeek::render::pahole::PaholeOptions {
                    hex,
                    expand_types,
                    cacheline_size,
                };
                let json = format == Format::Json;
                use kpeek::render::pahole::TypeFile;
                let file = match (&btf, &vmlinux, via) {
                    (Some(b), _, _) => TypeFile::Btf(b),
                    // kpeek rpc: the vmlinux it keeps open.
                    (None, Some(v), Via::Gdb(gdb)) if Some(v.as_path()) == gdb.vmlinux => {
                        TypeFile::Opened(gdb.debug)
                    }
                    // kpeek rpc with no vmlinux: the kernel's own BTF.
                    (None, None, Via::Gdb(gdb)) => TypeFile::Opened(gdb.debug),
                    (None, Some(v), _) => TypeFile::Dwarf(v),
                    (None, None, _) => {
                        return Err(kpeek::Error::Usage("--vmlinux or --btf is required".into()))
                    }
                };
                if all {
                    return kpeek::render::pahole::run_all_from(file, &opts, json, out);
                }
                kpeek::render::pahole::run_from(file, &names, &opts, json, out)
            }
            Command::Bt(args) => bt(args, out, via),
            Command::Serve(args) => serve(args),
            Command::Rpc { vmlinux } => rpc(vmlinux.as_deref()),
        }
    }
}

/// Print a listing's warnings; a partial listing exits with status 2.
fn finish(warnings: &[kpeek::kernel::Warning]) -> kpeek::Result<()> {
    for w in warnings {
        eprintln!("kpeek: warning: {}", escape(&w.message));
    }
    if warnings.is_empty() {
        Ok(())
    } else {
        Err(Error::Partial(warnings.len()))
    }
}

/// The JSON of `ps` and `threads` (docs/json-schema.md), serialised
/// straight from the task list.
#[derive(serde::Serialize)]
struct TaskReport<'a, T: serde::Serialize> {
    schema_version: u32,
    tasks: &'a T,
    warnings: &'a [kpeek::kernel::Warning],
}

fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> kpeek::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| Error::Usage(e.to_string()))?;
    writeln!(out).map_err(stdout_error)
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::Io {
        path: "<stdout>".into(),
        source: e,
    }
}

fn ps(args: PsArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    // lx-ps shows pid and comm only: read nothing else, unless a filter
    // asks about the state or the kind of task.
    let lx = args.style == PsStyle::Lx && args.target.format == Format::Human;
    let list = if lx && args.state.is_none() && !args.user && !args.kernel {
        kpeek::kernel::for_each_task_name(&prog)?
    } else if lx {
        kpeek::kernel::for_each_task_brief(&prog)?
    } else {
        kpeek::kernel::for_each_task(&prog)?
    };
    let want_state = args.state.as_deref().unwrap_or("");
    let selected: Vec<&kpeek::kernel::Task> = list
        .tasks
        .iter()
        .filter(|t| {
            args.threads || args.style == PsStyle::Lx || t.pid == t.tgid || !args.pid.is_empty()
        })
        .filter(|t| args.pid.is_empty() || args.pid.contains(&t.pid) || args.pid.contains(&t.tgid))
        .filter(|t| args.name.as_deref().is_none_or(|n| t.comm.contains(n)))
        .filter(|t| want_state.is_empty() || want_state.contains(t.state))
        .filter(|t| if t.kthread { !args.user } else { !args.kernel })
        .collect();
    match (args.target.format, args.style) {
        (Format::Json, _) => write_json(
            out,
            &TaskReport {
                schema_version: 1,
                tasks: &selected,
                warnings: &list.warnings,
            },
        )?,
        (Format::Human, PsStyle::Lx) => {
            kpeek::render::ps::lx_ps(out, &list).map_err(stdout_error)?
        }
        (Format::Human, PsStyle::Kpeek) if args.tree => {
            let all: Vec<&kpeek::kernel::Task> = list.tasks.iter().collect();
            kpeek::render::ps::tree(out, &all).map_err(stdout_error)?
        }
        (Format::Human, PsStyle::Kpeek) => {
            kpeek::render::ps::table(out, &selected, args.threads).map_err(stdout_error)?
        }
    }
    finish(&list.warnings)
}

fn bt(args: BtArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    use kpeek::kernel::stack::{CpuTrace, TaskTrace, Unwinder};
    let prog = args.target.open(via)?;
    // The CPUs only: bt needs their registers, not the rest of `info`.
    let info = kpeek::kernel::info::CpuStates::gather(&prog);
    let cpu_regs = info.cpus.iter().map(|c| (c.cpu, c.registers)).collect();
    let unwinder = Unwinder::new(&prog, cpu_regs)?;
    let lines = if args.no_lines || args.style == BtStyle::Proc {
        None
    } else {
        match prog.debug.lines() {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("kpeek: warning: no source lines: {e}");
                None
            }
        }
    };
    let want_cpus = args.cpus || (args.pids.is_empty() && !args.all);
    if want_cpus && info.cpus.is_empty() {
        return Err(Error::Usage(
            "this target has no CPU registers: give PIDs or --all".into(),
        ));
    }
    let mut cpus = Vec::new();
    if want_cpus {
        let mut order: Vec<&kpeek::kernel::info::CpuInfo> = info.cpus.iter().collect();
        order.sort_by_key(|c| (!c.panicked, c.cpu));
        for c in order {
            let stack = unwinder.cpu_stack(c.cpu, &c.registers, None);
            cpus.push(CpuTrace {
                cpu: c.cpu,
                panicked: c.panicked,
                pid: c.current.as_ref().map(|t| t.0),
                comm: c.current.as_ref().map(|t| t.1.clone()),
                frames: unwinder.describe(&stack, lines.as_ref()),
                end: stack.end,
            });
        }
    }
    let list = if args.all || !args.pids.is_empty() {
        kpeek::kernel::for_each_task(&prog)?
    } else {
        kpeek::kernel::TaskList::default()
    };
    let mut tasks = Vec::new();
    let mut proc = Vec::new();
    for pid in &args.pids {
        if !list.tasks.iter().any(|t| t.pid == *pid) {
            return Err(Error::Usage(format!("no task with pid {pid}")));
        }
    }
    for t in list
        .tasks
        .iter()
        .filter(|t| args.all || args.pids.contains(&t.pid))
    {
        let stack = unwinder.task_stack(t);
        if args.style == BtStyle::Proc {
            proc.push(unwinder.proc_stack(&stack));
        }
        tasks.push(TaskTrace {
            pid: t.pid,
            tgid: t.tgid,
            comm: t.comm.clone(),
            task: t.task,
            state: t.state,
            cpu: t.cpu,
            switches: t.switches,
            start: stack.start,
            frames: unwinder.describe(&stack, lines.as_ref()),
            end: stack.end,
        });
    }
    for n in &unwinder.notices {
        eprintln!("kpeek: warning: {}", escape(&n.to_string()));
    }
    match args.target.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct BtReport<'a> {
                schema_version: u32,
                cpus: &'a [CpuTrace],
                tasks: &'a [TaskTrace],
                #[serde(skip_serializing_if = "<[Vec<String>]>::is_empty")]
                proc: &'a [Vec<String>],
                notices: &'a [String],
                warnings: &'a [kpeek::kernel::Warning],
            }
            write_json(
                out,
                &BtReport {
                    schema_version: 1,
                    cpus: &cpus,
                    tasks: &tasks,
                    proc: &proc,
                    notices: &unwinder.notices,
                    warnings: &list.warnings,
                },
            )?;
        }
        Format::Human => {
            use kpeek::render::bt;
            for c in &cpus {
                bt::cpu(out, c).map_err(stdout_error)?;
            }
            let header = tasks.len() > 1 || !cpus.is_empty();
            for (i, t) in tasks.iter().enumerate() {
                match proc.get(i) {
                    Some(lines) => bt::proc_lines(out, t, lines, header),
                    None => bt::task(out, t),
                }
                .map_err(stdout_error)?;
            }
        }
    }
    finish(&list.warnings)
}

fn info(target: Target, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = target.open(via)?;
    let info = kpeek::kernel::info::Info::gather(&prog);
    match target.format {
        Format::Json => write_json(out, &info),
        Format::Human => kpeek::render::info::info(out, &info).map_err(stdout_error),
    }
}

fn dmesg(args: DmesgArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    use kpeek::kernel::printk::Entry;
    let prog = args.target.open(via)?;
    let log = kpeek::kernel::printk::read_log(&prog)?;
    match (args.target.format, args.style) {
        (Format::Json, _) => write_json(
            out,
            &serde_json::json!({
                "schema_version": 1,
                "entries": &log.entries,
                "warnings": &log.warnings,
            }),
        )?,
        (Format::Human, PsStyle::Lx) => {
            kpeek::render::dmesg::lx_dmesg(out, &log).map_err(stdout_error)?
        }
        (Format::Human, PsStyle::Kpeek) => {
            let opts = kpeek::render::dmesg::DmesgOptions {
                raw: args.raw,
                caller: args.caller,
            };
            kpeek::render::dmesg::dmesg(out, &log, opts).map_err(stdout_error)?
        }
    }
    // Gaps are marked in the listing; they make it partial too.
    let mut warnings = log.warnings.clone();
    for e in &log.entries {
        if let Entry::Gap(g) = e {
            warnings.push(kpeek::kernel::Warning {
                code: "printk_gap",
                message: format!("{} printk record(s) lost: {}", g.records, g.reason),
                address: None,
            });
        }
    }
    finish(&warnings)
}

fn lsmod(args: LsmodArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let list = kpeek::kernel::modules::for_each_module(&prog)?;
    let mods = &list.modules;
    match (args.target.format, args.style) {
        (Format::Json, _) => write_json(
            out,
            &serde_json::json!({
                "schema_version": 1,
                "modules": mods,
                "warnings": &list.warnings,
            }),
        )?,
        (Format::Human, LsmodStyle::Kpeek) => {
            kpeek::render::lsmod::lsmod(out, mods).map_err(stdout_error)?
        }
        (Format::Human, LsmodStyle::Proc) => {
            kpeek::render::lsmod::proc_modules(out, mods).map_err(stdout_error)?
        }
        (Format::Human, LsmodStyle::Lx) => {
            kpeek::render::lsmod::lx_lsmod(out, mods).map_err(stdout_error)?
        }
    }
    finish(&list.warnings)
}

fn cpus(args: CpusArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let cpus = kpeek::kernel::cpus::cpus(&prog)?;
    match (args.target.format, args.style) {
        (Format::Json, _) => write_json(out, &cpus),
        (Format::Human, PsStyle::Lx) => {
            kpeek::render::cpus::lx_cpus(out, &cpus).map_err(stdout_error)
        }
        (Format::Human, PsStyle::Kpeek) => {
            kpeek::render::cpus::table(out, &cpus).map_err(stdout_error)
        }
    }
}

fn read(args: ReadArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    use kpeek::memory::MemorySource;
    if args.len > 1 << 24 {
        return Err(Error::Usage(format!(
            "{} bytes is more than kpeek read shows (16 MiB)",
            args.len
        )));
    }
    let prog = args.target.open(via)?;
    let addr = match u64::from_str_radix(args.address.trim_start_matches("0x"), 16) {
        Ok(a) => a,
        Err(_) if !args.phys => prog.symbol(&args.address)?.get(),
        Err(e) => return Err(Error::Usage(format!("{}: {e}", args.address))),
    };
    let mut buf = vec![0u8; args.len];
    if args.phys {
        prog.memory
            .read_phys(kpeek::addr::PhysAddr(addr), &mut buf)?;
    } else {
        prog.read(kpeek::addr::VirtAddr(addr), &mut buf)?;
    }
    kpeek::render::info::hexdump(out, addr, &buf).map_err(stdout_error)
}

fn threads(target: Target, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = target.open(via)?;
    let list = kpeek::kernel::for_each_task(&prog)?;
    match target.format {
        Format::Json => write_json(
            out,
            &TaskReport {
                schema_version: 1,
                tasks: &list.tasks,
                warnings: &list.warnings,
            },
        )?,
        Format::Human => kpeek::render::ps::thrd_showall(out, &list).map_err(stdout_error)?,
    }
    finish(&list.warnings)
}

/// `kpeek rpc`: serve gdb-scripts/kpeek.py. Each request is an ordinary
/// kpeek command line; its memory comes from GDB, its output goes back in
/// the response.
fn rpc(vmlinux: Option<&std::path::Path>) -> kpeek::Result<()> {
    use kpeek::rpc::{GdbMemory, Response};
    let stdin = std::io::BufReader::new(std::io::stdin());
    let gdb = std::sync::Arc::new(GdbMemory::new(Box::new(stdin), Box::new(std::io::stdout())));
    let memory: std::sync::Arc<dyn kpeek::memory::MemorySource> = gdb.clone();
    // Opened at the first command and kept: types resolved once serve every command.
    // Without a vmlinux, found in the kernel's memory from the CPUs' pcs,
    // with the KASLR offset.
    type Shared = (std::sync::Arc<kpeek::dwarf::DebugInfo>, Option<u64>);
    let mut shared: Option<Shared> = None;
    let mut debug_info = |pcs: &[u64]| -> kpeek::Result<Shared> {
        if let Some(d) = &shared {
            return Ok(d.clone());
        }
        let d = match vmlinux {
            Some(v) => (std::sync::Arc::new(kpeek::dwarf::DebugInfo::open(v)?), None),
            None => {
                let (d, offset) = kpeek::kernel::program::debug_from_virtual(&*memory, pcs)?;
                (std::sync::Arc::new(d), Some(offset))
            }
        };
        shared = Some(d.clone());
        Ok(d)
    };
    while let Some(request) = gdb.next_request()? {
        if request.hello {
            gdb.respond(&Response {
                id: request.id,
                version: Some(kpeek::VERSION.to_owned()),
                status: 0,
                output: String::new(),
                error: None,
                reads: 0,
                bytes: 0,
            })?;
            continue;
        }
        if request.prepare {
            // (No vmlinux: nothing to load before a command brings the pcs.)
            let error = match vmlinux.map(|_| debug_info(&[])) {
                None => None,
                Some(Ok((debug, _))) => {
                    // The symbol table and the task types: what every
                    // command needs first. A kernel without one of them
                    // fails later, with context.
                    let _ = kpeek::kernel::program::image_facts(&debug);
                    let _ = kpeek::kernel::prepare(&debug);
                    None
                }
                Some(Err(e)) => Some(e.to_string()),
            };
            gdb.respond(&Response {
                id: request.id,
                version: None,
                status: u8::from(error.is_some()),
                output: String::new(),
                error,
                reads: 0,
                bytes: 0,
            })?;
            continue;
        }
        let mut argv = vec!["kpeek".to_owned()];
        argv.extend(request.argv.iter().cloned());
        // Every command that reads a kernel takes the vmlinux GDB has.
        let takes_vmlinux = argv.get(1).is_some_and(|c| {
            !c.starts_with('-') && !matches!(c.as_str(), "help" | "rpc" | "serve")
        });
        if let Some(vmlinux) = vmlinux.filter(|_| takes_vmlinux) {
            if !argv.iter().any(|a| a == "--vmlinux") {
                argv.push("--vmlinux".into());
                argv.push(vmlinux.display().to_string());
            }
        }
        let pcs = request.pcs();
        let cpus = request.cpu_registers();
        let mut out = Vec::new();
        let result = match Cli::try_parse_from(&argv) {
            // `kpeek ps --help` inside GDB: the help is the output.
            Err(e)
                if matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) =>
            {
                out.extend_from_slice(e.to_string().as_bytes());
                Ok(())
            }
            // What clap says is wrong, without its "For more information" tail.
            Err(e) => Err(Error::Usage(
                e.to_string()
                    .lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim_start_matches("error: ")
                    .to_owned(),
            )),
            Ok(Cli {
                command: Command::Rpc { .. } | Command::Serve(_),
                ..
            }) => Err(Error::Usage(
                "rpc and serve cannot run inside kpeek rpc".into(),
            )),
            Ok(cli) => debug_info(&pcs).and_then(|(debug, kaslr_offset)| {
                cli.command.run(
                    &mut out,
                    Via::Gdb(GdbTarget {
                        memory: &memory,
                        pcs: &pcs,
                        cpus: &cpus,
                        vmlinux,
                        debug: &debug,
                        kaslr_offset,
                    }),
                )
            }),
        };
        let (reads, bytes) = gdb.take_counts();
        let (status, error) = match &result {
            Ok(()) => (0, None),
            Err(Error::Partial(_)) => (2, None),
            Err(e) => (1, Some(e.to_string())),
        };
        gdb.respond(&Response {
            id: request.id,
            version: None,
            status,
            output: String::from_utf8_lossy(&out).into_owned(),
            error,
            reads,
            bytes,
        })?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Buffered (a listing is many small writes), and not stdout().lock():
    // `serve` writes to stdout from its session threads itself.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let result = cli.command.run(&mut out, Via::Cli);
    // Flush before any error message, so output and message keep their order.
    let flushed = out.flush().map_err(stdout_error);
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Partial(_)) => ExitCode::from(2),
        // `kpeek ps | head`: the reader left; that is not an error.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kpeek: {}", escape(&err.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// `kpeek serve` options.
#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    target: Target,
    /// Where to listen (port 0: any free port; the chosen one is printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1234")]
    listen: std::net::SocketAddr,
    /// Listen on an address other than loopback: anyone who can reach it reads the whole dump.
    #[arg(long)]
    allow_remote: bool,
}

/// `kpeek serve`: GDB sessions one after another (each in its own thread)
/// until Ctrl-C.
fn serve(args: ServeArgs) -> kpeek::Result<()> {
    use kpeek::gdbserver::{serve, Event, Snapshot};
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(Error::Usage(format!(
            "{} is not a loopback address: the dump would be readable from the network (add --allow-remote if that is what you want)",
            args.listen
        )));
    }
    let prog = args.target.open(Via::Cli)?;
    let snap = Snapshot::gather(&prog)?;
    for notice in &snap.notices {
        eprintln!("kpeek: warning: {}", escape(&notice.to_string()));
    }
    let listener = std::net::TcpListener::bind(args.listen).map_err(|e| Error::Io {
        path: args.listen.to_string().into(),
        source: e,
    })?;
    let addr = listener.local_addr().map_err(|e| Error::Io {
        path: args.listen.to_string().into(),
        source: e,
    })?;
    let vmlinux = args
        .target
        .vmlinux
        .as_deref()
        .map_or("VMLINUX".into(), |p| p.display().to_string());
    let offset = snap.kaslr_offset();
    let cpus = snap
        .threads
        .iter()
        .filter(|t| matches!(t.kind, kpeek::gdbserver::ThreadKind::Cpu(_)))
        .count();
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "kpeek: serving {} CPUs and {} tasks on {addr}",
            cpus,
            snap.tasks.tasks.len()
        )
        .map_err(stdout_error)?;
        if args.target.vmlinux.is_some() {
            writeln!(
                out,
                "connect with:\n  gdb {vmlinux} -ex 'target remote {addr}'"
            )
            .map_err(stdout_error)?;
        } else {
            // Served from the dump's own kallsyms and BTF: GDB has no
            // symbols unless the user has the vmlinux.
            writeln!(
                out,
                "connect with:\n  gdb -ex 'target remote {addr}'\n\
                 without a vmlinux GDB has no symbols: threads, registers and memory are at run-time \
                 addresses (`monitor sym NAME` gives a symbol's, from the dump's kallsyms);\n\
                 with the kernel's vmlinux, if you have it:\n  gdb VMLINUX -ex 'target remote {addr}'"
            )
            .map_err(stdout_error)?;
        }
        writeln!(
            out,
            "the server shifts the symbols by the KASLR offset {offset:#x} (qOffsets), as `file {vmlinux} -o {offset:#x}` would"
        )
        .map_err(stdout_error)?;
        if snap.percpu_zero_based() {
            writeln!(
                out,
                "that shifts the zero-based per-CPU variables too; for exact per-CPU variables ($lx_per_cpu, lx-cpus), connect with:\n  \
                 gdb -ex 'add-symbol-file {vmlinux} -o {offset:#x} -s .data..percpu 0' -ex 'target remote {addr}'"
            )
            .map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)?;
    }
    // Sessions are the server's report (stdout, whose reader may be gone:
    // never a panic for that); only failures go to stderr.
    let log = |event: Event<'_>| {
        let _ = match event {
            Event::Connected(peer) => writeln!(std::io::stdout(), "kpeek: {peer}: connected"),
            Event::Ended(peer, Ok(how)) => {
                writeln!(std::io::stdout(), "kpeek: {peer}: session ended ({how:?})")
            }
            Event::Ended(peer, Err(e)) => {
                writeln!(std::io::stderr(), "kpeek: {peer}: session ended: {e}")
            }
            Event::AcceptFailed(e) => writeln!(std::io::stderr(), "kpeek: accept: {e}"),
        };
    };
    serve(&snap, &listener, &log);
    Ok(())
}
