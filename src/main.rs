//! The `kpeek` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// The kernel image with debug info (vmlinux).
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
    /// Summarise a dump or live kernel: format, release, KASLR, CPUs.
    Info(Target),
    /// List processes (or every thread with --threads).
    Ps(Target),
    /// List every thread like the kernel books' `thrd_showall`.
    Threads(Target),
    /// Show struct layouts from the vmlinux DWARF, like `pahole -C`.
    Pahole {
        /// The kernel image with debug info (vmlinux).
        #[arg(long, value_name = "FILE")]
        vmlinux: Option<PathBuf>,
        /// Struct, union or typedef names.
        names: Vec<String>,
    },
    /// Kernel backtraces of tasks.
    Bt(Target),
    /// Serve a crash dump to GDB as a remote target.
    Serve(Target),
    /// Speak JSON lines on stdin/stdout (used by gdb-scripts/kpeek.py).
    Rpc,
}

impl Command {
    fn run(self) -> kpeek::Result<()> {
        let (command, tracking) = match self {
            Command::Info(_) => ("info", "issue 4"),
            Command::Ps(_) => ("ps", "issue 5"),
            Command::Threads(_) => ("threads", "issue 5"),
            Command::Pahole { .. } => ("pahole", "issue 3"),
            Command::Bt(_) => ("bt", "issue 7"),
            Command::Serve(_) => ("serve", "issue 6"),
            Command::Rpc => ("rpc", "issue 10"),
        };
        Err(Error::NotImplemented { command, tracking })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kpeek: {err}");
            ExitCode::FAILURE
        }
    }
}
