//! The `kpeek` command line: clap definitions, opening the target, and one
//! file per command. Commands ask `report/` for data and `render/` to print
//! it; nothing here walks kernel structures.

mod bt;
mod cpus;
mod dmesg;
mod download_bar;
mod gdb;
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
#[command(name = "kpeek", version, about, long_about)]
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
    Info(Target),
    /// The kernel log (the printk ring buffer), like dmesg.
    Dmesg(dmesg::DmesgArgs),
    /// Loaded modules, like lsmod or /proc/modules.
    Lsmod(lsmod::LsmodArgs),
    /// Each CPU: online, current task, idle, runqueue length.
    Cpus(cpus::CpusArgs),
    /// Hexdump kernel memory: the debugger's debugging tool.
    Read(read::ReadArgs),
    /// List processes (or every thread with --threads).
    Ps(ps::PsArgs),
    /// List every thread like the kernel books' `thrd_showall`.
    Threads(Target),
    /// Show struct layouts from the vmlinux DWARF (or BTF), like `pahole -C`.
    Pahole(pahole::PaholeArgs),
    /// Kernel backtraces: of tasks (PIDs or --all), or of every CPU (--cpus, the default).
    Bt(bt::BtArgs),
    /// Serve a crash dump to GDB as a remote target, every task a thread.
    Serve(serve::ServeArgs),
    /// Open GDB ready to use: attached to the dump (served in the
    /// background) or to a live QEMU guest, the vmlinux at its run-time
    /// addresses, kpeek.py sourced. Arguments after `--` go to GDB.
    Gdb(gdb::GdbArgs),
    /// Print kpeek.py, the GDB extension built into this kpeek (or
    /// write it into a directory with --install).
    GdbScript(gdb::GdbScriptArgs),
    /// Speak JSON lines on stdin/stdout (used by gdb-scripts/kpeek.py).
    Rpc(rpc::RpcArgs),
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
            Command::Serve(args) => serve::run(args),
            Command::Gdb(args) => gdb::run(args),
            Command::GdbScript(args) => gdb::script(args, out),
            Command::Rpc(args) => rpc::run(args),
        }
    }
}

/// Run the command line; the exit status is 0 for a report, 2 for a
/// partial one, 1 for an error (docs/json-schema.md).
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
