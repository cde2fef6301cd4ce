//! The `kpeek` command line: clap definitions, opening the target, and one
//! file per command. Commands ask `report/` for data and `render/` to print
//! it; nothing here walks kernel structures.

mod bt;
mod cpus;
mod dmesg;
mod download_bar;
mod gdb;
mod hung;
mod info;
mod lsmod;
mod output;
mod pahole;
mod ps;
mod read;
mod rpc;
mod serve;
mod target;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kpeek::Error;

pub use output::{Format, Style};
pub use target::{GdbTarget, Target, Via};

/// Look inside a Linux kernel, live or dead.
///
/// kpeek reads a crash dump (ELF vmcore, kdump-compressed, QEMU dumps) or a
/// live QEMU guest, together with the kernel's vmlinux, and shows what the
/// kernel was doing.
#[derive(Parser, Debug)]
#[command(
    name = "kpeek",
    version,
    about,
    long_about,
    after_help = "Exit status: 0 a complete report, 2 a report with warnings (partial), 1 an error."
)]
pub struct Cli {
    /// Say more on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarise a dump or live kernel: release, uptime, command line, panic, taint, memory, CPUs.
    #[command(
        after_help = "Examples:\n  kpeek info --vmlinux vmlinux --core vmcore\n  kpeek info --core vmcore                    # no vmlinux: found by build ID, or the dump's kallsyms and BTF\n  kpeek info --qemu 127.0.0.1:1234 --format json"
    )]
    Info(Target),
    /// The kernel log (the printk ring buffer), like dmesg.
    #[command(
        after_help = "Examples:\n  kpeek dmesg --core vmcore\n  kpeek dmesg --raw --caller --core vmcore     # exactly the kernel's syslog lines\n  kpeek dmesg --style lx --qemu 127.0.0.1:1234"
    )]
    Dmesg(dmesg::DmesgArgs),
    /// Loaded modules, like lsmod or /proc/modules.
    #[command(
        after_help = "Examples:\n  kpeek lsmod --core vmcore\n  kpeek lsmod --style proc --core vmcore       # exactly /proc/modules"
    )]
    Lsmod(lsmod::LsmodArgs),
    /// Each CPU: online, current task, idle, runqueue length.
    #[command(
        after_help = "Examples:\n  kpeek cpus --core vmcore\n  kpeek cpus --style lx --core vmcore          # the kernel's lx-cpus"
    )]
    Cpus(cpus::CpusArgs),
    /// Hexdump kernel memory: the debugger's debugging tool.
    #[command(
        after_help = "Examples:\n  kpeek read --core vmcore linux_banner 128\n  kpeek read --core vmcore --phys 0x1000000 0x40\n  kpeek read --core vmcore init_task 64 --format json"
    )]
    Read(read::ReadArgs),
    /// List processes (or every thread with --threads).
    #[command(
        after_help = "Examples:\n  kpeek ps --vmlinux vmlinux --core vmcore\n  kpeek ps --threads --state D --core vmcore   # every thread in D state\n  kpeek ps --tree --core vmcore\n  kpeek ps --style lx --qemu 127.0.0.1:1234     # exactly the kernel's lx-ps"
    )]
    Ps(ps::PsArgs),
    /// List every thread like the kernel books' `thrd_showall`.
    #[command(after_help = "Examples:\n  kpeek threads --core vmcore")]
    Threads(Target),
    /// Show struct layouts from the vmlinux DWARF (or BTF), like `pahole -C`.
    #[command(
        after_help = "Examples:\n  kpeek pahole --vmlinux vmlinux task_struct\n  kpeek pahole --vmlinux vmlinux -C list_head,rq --hex\n  kpeek pahole --btf /sys/kernel/btf/vmlinux sk_buff"
    )]
    Pahole(pahole::PaholeArgs),
    /// Kernel backtraces: of tasks (PIDs or --all), or of every CPU (--cpus, the default).
    #[command(
        after_help = "Examples:\n  kpeek bt --vmlinux vmlinux --core vmcore      # every CPU, the panicking one first\n  kpeek bt 1 42 --core vmcore                  # these tasks, with source lines\n  kpeek bt --all --style proc --core vmcore     # exactly /proc/PID/stack, for every task"
    )]
    Bt(bt::BtArgs),
    /// Hung tasks: every task in D state grouped by identical stack, how long
    /// each has been blocked, the lock it waits on and who holds it, and
    /// deadlock cycles.
    #[command(
        after_help = "Examples:\n  kpeek hung --core vmcore\n  kpeek hung --all-blocked --core vmcore        # every sleeping task, not only D\n  kpeek hung --format json --qemu 127.0.0.1:1234"
    )]
    Hung(hung::HungArgs),
    /// Serve a crash dump to GDB as a remote target, every task a thread.
    #[command(
        after_help = "Examples:\n  kpeek serve --vmlinux vmlinux --core vmcore   # then: gdb vmlinux -ex 'target remote 127.0.0.1:1234'\n  kpeek serve --core vmcore --listen 127.0.0.1:0"
    )]
    Serve(serve::ServeArgs),
    /// Open GDB ready to use: attached to the dump (served in the
    /// background) or to a live QEMU guest, the vmlinux at its run-time
    /// addresses, kpeek.py sourced. Arguments after `--` go to GDB.
    #[command(
        after_help = "Examples:\n  kpeek gdb --vmlinux vmlinux --core vmcore\n  kpeek gdb --core vmcore -- -ex 'info threads'\n  kpeek gdb --vmlinux vmlinux --qemu 127.0.0.1:1234"
    )]
    Gdb(gdb::GdbArgs),
    /// Print kpeek.py, the GDB extension built into this kpeek (or
    /// write it into a directory with --install).
    #[command(
        after_help = "Examples:\n  kpeek gdb-script > kpeek.py                  # then in GDB: source kpeek.py\n  kpeek gdb-script --install ~/.config/gdb"
    )]
    GdbScript(gdb::GdbScriptArgs),
    /// Speak JSON lines on stdin/stdout (used by gdb-scripts/kpeek.py).
    Rpc(rpc::RpcArgs),
    /// Shell completions for kpeek, generated from its command line.
    #[command(
        after_help = "Examples:\n  kpeek completions bash > /etc/bash_completion.d/kpeek\n  kpeek completions zsh > ~/.zfunc/_kpeek"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff), generated from the command line.
    #[command(
        after_help = "Examples:\n  kpeek man | man -l -\n  kpeek man > /usr/local/share/man/man1/kpeek.1"
    )]
    Man,
}

impl Command {
    fn run(self, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
        match self {
            Command::Info(target) => info::run(target, out, via),
            Command::Dmesg(args) => dmesg::run(args, out, via),
            Command::Lsmod(args) => lsmod::run(args, out, via),
            Command::Cpus(args) => cpus::run(args, out, via),
            Command::Read(args) => read::run(args, out, via),
            Command::Ps(args) => ps::run(args, out, via),
            Command::Threads(target) => ps::threads(target, out, via),
            Command::Pahole(args) => pahole::run(args, out, via),
            Command::Bt(args) => bt::run(args, out, via),
            Command::Hung(args) => hung::run(args, out, via),
            Command::Serve(args) => serve::run(args),
            Command::Gdb(args) => gdb::run(args),
            Command::GdbScript(args) => gdb::script(args, out),
            Command::Rpc(args) => rpc::run(args),
            Command::Completions { shell } => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(shell, &mut cmd, "kpeek", out);
                Ok(())
            }
            Command::Man => {
                let cmd = <Cli as clap::CommandFactory>::command();
                clap_mangen::Man::new(cmd)
                    .render(out)
                    .map_err(output::stdout_error)
            }
        }
    }
}

/// Run the command line. The exit status, for every command: 0, a
/// complete report; 2, a report printed with warnings (partial); 1, an
/// error (docs/json-schema.md).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Buffered (a listing is many small writes), and not stdout().lock():
    // `serve` writes to stdout from its session threads itself.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let result = cli.command.run(&mut out, Via::Cli);
    // Flush before any error message, so output and message keep their order.
    let flushed = out.flush().map_err(output::stdout_error);
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Partial(_)) => ExitCode::from(2),
        // `kpeek ps | head`: the reader left; that is not an error.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kpeek: {}", kpeek::render::escape(&err.to_string()));
            ExitCode::FAILURE
        }
    }
}
