//! `kpeek rpc`: serve gdb-scripts/kpeek.py. Each request is an ordinary
//! kpeek command line; its memory comes from GDB, its output goes back in
//! the response (the protocol: `src/rpc/mod.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser};
use kpeek::debuginfo::KernelDebugInfo;
use kpeek::memory::MemorySource;
use kpeek::rpc::{GdbMemory, Incoming, Request, Response};
use kpeek::Error;

use super::{Cli, Command, GdbTarget, Via};

/// `kpeek rpc` options.
#[derive(Args, Debug)]
pub struct RpcArgs {
    /// The kernel image with debug info (the one GDB has loaded); without
    /// it, the kernel's own kallsyms and BTF, read through GDB.
    #[arg(long, value_name = "FILE")]
    vmlinux: Option<PathBuf>,
}

/// The debug info every command shares, and without a vmlinux the KASLR
/// offset found with it.
type Shared = (Arc<KernelDebugInfo>, Option<u64>);

/// The session: GDB's memory and what was opened once for every command.
struct Session<'a> {
    gdb: Arc<GdbMemory>,
    memory: Arc<dyn MemorySource>,
    vmlinux: Option<&'a Path>,
    shared: Option<Shared>,
}

impl Session<'_> {
    /// Opened at the first command and kept: types resolved once serve
    /// every command. Without a vmlinux, found in the kernel's memory from
    /// the CPUs' pcs, with the KASLR offset.
    fn debug_info(&mut self, pcs: &[u64]) -> kpeek::Result<Shared> {
        if let Some(d) = &self.shared {
            return Ok(d.clone());
        }
        let d = match self.vmlinux {
            Some(v) => (Arc::new(KernelDebugInfo::open(v)?), None),
            None => {
                let (d, offset) = kpeek::kernel::program::debug_from_virtual(&*self.memory, pcs)?;
                (Arc::new(d), Some(offset))
            }
        };
        self.shared = Some(d.clone());
        Ok(d)
    }

    /// `{"prepare": true}`: the symbol table and the task types, what
    /// every command needs first. A kernel without one of them fails
    /// later, with context. (No vmlinux: nothing to load before a command
    /// brings the pcs.)
    fn prepare(&mut self) -> Option<String> {
        self.vmlinux?;
        match self.debug_info(&[]) {
            Ok((debug, _)) => {
                let _ = kpeek::kernel::program::image_facts(&debug);
                let _ = kpeek::kernel::prepare(&debug);
                None
            }
            Err(e) => Some(e.to_string()),
        }
    }

    /// Run one command line with GDB's memory.
    fn command(&mut self, request: &Request, out: &mut Vec<u8>) -> kpeek::Result<()> {
        let mut argv = vec!["kpeek".to_owned()];
        argv.extend(request.argv.iter().cloned());
        // Every command that reads a kernel takes the vmlinux GDB has.
        let takes_vmlinux = argv.get(1).is_some_and(|c| {
            !c.starts_with('-')
                && !matches!(
                    c.as_str(),
                    "help" | "rpc" | "serve" | "gdb" | "gdb-script" | "completions" | "man"
                )
        });
        if let Some(vmlinux) = self.vmlinux.filter(|_| takes_vmlinux) {
            if !argv.iter().any(|a| a == "--vmlinux") {
                argv.push("--vmlinux".into());
                argv.push(vmlinux.display().to_string());
            }
        }
        let cli = match Cli::try_parse_from(&argv) {
            // `kpeek ps --help` inside GDB: the help is the output.
            Err(e)
                if matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) =>
            {
                out.extend_from_slice(e.to_string().as_bytes());
                return Ok(());
            }
            // What clap says is wrong, without its "For more information" tail.
            Err(e) => return Err(Error::Usage(clap_message(&e))),
            Ok(cli) => cli,
        };
        if matches!(
            cli.command,
            Command::Rpc(_) | Command::Serve(_) | Command::Gdb(_)
        ) {
            return Err(Error::Usage(
                "rpc, serve and gdb cannot run inside kpeek rpc".into(),
            ));
        }
        let pcs = request.pcs();
        let cpus = request.cpu_registers();
        let (debug, kaslr_offset) = self.debug_info(&pcs)?;
        cli.command.run(
            out,
            Via::Gdb(GdbTarget {
                memory: &self.memory,
                pcs: &pcs,
                cpus: &cpus,
                vmlinux: self.vmlinux,
                debug: &debug,
                kaslr_offset,
            }),
        )
    }
}

/// clap's message for a bad command line, without its "For more
/// information" tail.
fn clap_message(e: &clap::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_start_matches("error: ")
        .to_owned()
}

/// A response with no output.
fn reply(id: u64, status: u8, error: Option<String>) -> Response {
    Response {
        id,
        version: None,
        status,
        output: String::new(),
        error,
        reads: 0,
        bytes: 0,
    }
}

pub fn run(args: RpcArgs) -> kpeek::Result<()> {
    let stdin = std::io::BufReader::new(std::io::stdin());
    let gdb = Arc::new(GdbMemory::new(Box::new(stdin), Box::new(std::io::stdout())));
    let mut session = Session {
        memory: gdb.clone(),
        gdb: gdb.clone(),
        vmlinux: args.vmlinux.as_deref(),
        shared: None,
    };
    while let Some(incoming) = gdb.next_request()? {
        let request = match incoming {
            Incoming::Request(r) => r,
            // A line that is not a request gets an error, and the
            // session goes on.
            Incoming::Bad { id, error } => {
                eprintln!("kpeek: {}", kpeek::render::escape(&error));
                gdb.respond(&reply(id.unwrap_or(0), 1, Some(error)))?;
                continue;
            }
        };
        if request.hello {
            gdb.respond(&Response {
                version: Some(kpeek::VERSION.to_owned()),
                ..reply(request.id, 0, None)
            })?;
            continue;
        }
        if request.prepare {
            let error = session.prepare();
            gdb.respond(&reply(request.id, u8::from(error.is_some()), error))?;
            continue;
        }
        let mut out = Vec::new();
        let result = session.command(&request, &mut out);
        let (reads, bytes) = session.gdb.take_counts();
        let (status, error) = match &result {
            Ok(()) => (0, None),
            Err(Error::Partial(_)) => (2, None),
            Err(e) => (1, Some(e.to_string())),
        };
        gdb.respond(&Response {
            output: String::from_utf8_lossy(&out).into_owned(),
            reads,
            bytes,
            ..reply(request.id, status, error)
        })?;
    }
    Ok(())
}
