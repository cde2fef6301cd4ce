//! `kpeek gdb` and `kpeek gdb-script` (the work: src/gdbserver/launch.rs).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use kpeek::gdbserver::launch::{self, Remote};
use kpeek::Error;

use super::output::stdout_error;
use super::{Target, Via};

/// `kpeek gdb` options.
#[derive(Args, Debug)]
pub struct GdbArgs {
    #[command(flatten)]
    target: Target,
    /// The GDB to run.
    #[arg(long, value_name = "PROGRAM", default_value = "gdb")]
    gdb: PathBuf,
    /// Arguments for GDB, after `--` (e.g. `-- -ex 'info threads'`).
    #[arg(last = true, value_name = "GDB ARGS")]
    gdb_args: Vec<std::ffi::OsString>,
}

/// `kpeek gdb-script` options.
#[derive(Args, Debug)]
pub struct GdbScriptArgs {
    /// Write kpeek.py into this directory instead.
    #[arg(long, value_name = "DIR")]
    install: Option<PathBuf>,
}

pub fn run(args: GdbArgs) -> kpeek::Result<()> {
    let remote = match &args.target.qemu {
        // QEMU's gdbstub takes one client: find the offset, let go, then GDB connects.
        Some(address) => Remote {
            address: address.clone(),
            kaslr_offset: match &args.target.vmlinux {
                Some(_) => args.target.open(Via::Cli)?.located.layout.kaslr_offset,
                None => 0,
            },
            vmlinux: args.target.vmlinux.clone(),
            percpu_zero_based: false,
        },
        None => {
            let (prog, origin) = args.target.open_with_origin(Via::Cli)?;
            let vmlinux = origin.as_ref().and_then(|o| o.path()).map(PathBuf::from);
            let served = launch::serve_in_background(prog)?;
            eprintln!(
                "kpeek: serving {} tasks on {} to GDB",
                served.tasks, served.addr
            );
            Remote {
                address: served.addr.to_string(),
                vmlinux,
                kaslr_offset: served.kaslr_offset,
                percpu_zero_based: served.percpu_zero_based,
            }
        }
    };
    let script = launch::ScriptDir::new()?;
    let kpeek = std::env::current_exe().map_err(|source| Error::Io {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let mut cmd = launch::gdb_command(
        args.gdb.as_os_str(),
        &remote,
        &script.script,
        &kpeek,
        &args.gdb_args,
    );
    let status = launch::run_foreground(&mut cmd)?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} exited: {status}",
            args.gdb.display()
        )))
    }
}

pub fn script(args: GdbScriptArgs, out: &mut dyn Write) -> kpeek::Result<()> {
    match args.install {
        None => out
            .write_all(launch::KPEEK_PY.as_bytes())
            .map_err(stdout_error),
        Some(dir) => {
            let path = launch::install_script(&dir)?;
            writeln!(out, "{}", path.display()).map_err(stdout_error)
        }
    }
}
