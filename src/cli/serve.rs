//! `kpeek serve`: a dump as a GDB remote target.

use std::io::Write;

use clap::Args;
use kpeek::Error;

use super::output::stdout_error;
use super::{Target, Via};

/// `kpeek serve` options.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    target: Target,
    /// Where to listen (port 0: any free port; the chosen one is printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1234")]
    listen: std::net::SocketAddr,
    /// Listen on an address other than loopback: anyone who can reach it reads the whole dump.
    #[arg(long)]
    allow_remote: bool,
    /// With --qemu: let GDB write the guest's memory and registers
    /// (refused by default).
    #[arg(long, requires = "qemu")]
    allow_writes: bool,
}

/// `kpeek serve`: GDB sessions one after another (each in its own thread)
/// until Ctrl-C.
pub fn run(args: ServeArgs) -> kpeek::Result<()> {
    use kpeek::gdbserver::{serve, Event, Snapshot};
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(Error::Usage(format!(
            "{} is not a loopback address: the dump would be readable from the network (add --allow-remote if that is what you want)",
            args.listen
        )));
    }
    if let Some(address) = &args.target.qemu {
        return relay(&args, address);
    }
    let (prog, origin) = args.target.open_with_origin(Via::Cli)?;
    let found = origin.as_ref().and_then(|o| o.path()).map(str::to_owned);
    let snap = Snapshot::gather(&prog)?;
    for notice in &snap.notices {
        super::output::warn(&notice.to_string());
    }
    let (listener, addr) = bind(args.listen)?;
    let vmlinux = found.clone().unwrap_or_else(|| "VMLINUX".into());
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
        if found.is_some() {
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

/// `kpeek serve --qemu`: GDB in front of a live guest, its tasks as threads.
fn relay(args: &ServeArgs, address: &str) -> kpeek::Result<()> {
    use kpeek::gdbserver::relay::{Relay, RelayEvent};
    use kpeek::kernel::Program;
    use std::sync::Arc;
    let debug = match &args.target.vmlinux {
        Some(v) => Some(kpeek::debuginfo::KernelDebugInfo::open(v)?),
        None => None,
    };
    let qemu = Arc::new(kpeek::live::qemu_host::QemuLive::connect(
        address,
        std::time::Duration::from_secs(10),
    )?);
    if let Some(why) = qemu.fell_back_locally() {
        super::output::warn(&format!(
            "reading the guest through the gdbstub, not QEMU's memory: {why}"
        ));
    }
    // Ctrl-C: let go of the guest first (QEMU would keep it stopped).
    {
        let qemu = qemu.clone();
        let _ = ctrlc::set_handler(move || {
            qemu.gdb().detach();
            std::process::exit(130);
        });
    }
    let options = args.target.options();
    let memory: Arc<dyn kpeek::memory::MemorySource> = qemu.clone();
    let prog = match debug {
        Some(debug) => Program::from_memory(debug, memory, qemu.notes(), &options)?,
        None => Program::from_memory_alone(
            memory,
            qemu.notes(),
            &[],
            std::path::Path::new(address),
            &options,
        )?,
    };
    let (listener, addr) = bind(args.listen)?;
    let offset = prog.located.layout.kaslr_offset;
    let vmlinux = args
        .target
        .vmlinux
        .as_ref()
        .map_or_else(|| "VMLINUX".to_owned(), |v| v.display().to_string());
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "kpeek: serving the guest at {address} on {addr}: its CPUs and every task as threads, \
             gathered again at every stop; continue, Ctrl-C, breakpoints and steps go to QEMU{}",
            if args.allow_writes {
                ""
            } else {
                "; writes refused (--allow-writes)"
            }
        )
        .map_err(stdout_error)?;
        writeln!(
            out,
            "connect with:\n  gdb {vmlinux} -ex 'target remote {addr}'\n\
             the server shifts the symbols by the KASLR offset {offset:#x} (qOffsets)"
        )
        .map_err(stdout_error)?;
        out.flush().map_err(stdout_error)?;
    }
    let log = |event: RelayEvent<'_>| {
        let _ = match event {
            RelayEvent::Connected(peer) => writeln!(std::io::stdout(), "kpeek: {peer}: connected"),
            RelayEvent::Ended(peer, how) => writeln!(
                std::io::stdout(),
                "kpeek: {peer}: session ended ({}); the guest runs on",
                kpeek::render::escape(how)
            ),
            RelayEvent::Stopped(n) => {
                writeln!(std::io::stdout(), "kpeek: guest stopped: {n} threads")
            }
            RelayEvent::Warning(w) => {
                writeln!(
                    std::io::stderr(),
                    "kpeek: warning: {}",
                    kpeek::render::escape(w)
                )
            }
        };
        let _ = std::io::stdout().flush();
    };
    let mut relay = Relay::new(qemu.clone(), prog, args.allow_writes);
    let served = relay.serve(&listener, &log);
    qemu.gdb().detach();
    served
}

/// Listen on `at`; the address it got (port 0: the one chosen).
fn bind(at: std::net::SocketAddr) -> kpeek::Result<(std::net::TcpListener, std::net::SocketAddr)> {
    let io = |e| Error::Io {
        path: at.to_string().into(),
        source: e,
    };
    let listener = std::net::TcpListener::bind(at).map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    Ok((listener, addr))
}
