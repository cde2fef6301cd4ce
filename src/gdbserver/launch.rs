//! `kpeek gdb`: GDB ready to use in one command. For a dump, kpeek serves
//! it in the background on a free loopback port; for a live guest, GDB
//! connects to QEMU's gdbstub itself. Either way GDB starts with the
//! vmlinux at the kernel's run-time addresses, attached, and with kpeek.py
//! (shipped inside the binary, [`KPEEK_PY`]) sourced.

use std::ffi::{OsStr, OsString};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{serve, Snapshot};
use crate::kernel::Program;
use crate::{Error, Result};

/// gdb-scripts/kpeek.py, as built into this binary: `cargo install` gives
/// a working GDB extension without a checkout.
pub const KPEEK_PY: &str = include_str!("../../gdb-scripts/kpeek.py");

/// Write kpeek.py into `dir` (created if need be); its path.
pub fn install_script(dir: &Path) -> Result<PathBuf> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("kpeek.py");
    std::fs::write(&path, KPEEK_PY).map_err(io(&path))?;
    Ok(path)
}

/// What GDB attaches to and how its symbols line up.
#[derive(Clone, Debug)]
pub struct Remote {
    /// `target remote` address: kpeek's own server, or QEMU's gdbstub.
    pub address: String,
    /// The vmlinux GDB loads, if any.
    pub vmlinux: Option<PathBuf>,
    /// The KASLR offset to load it at (`add-symbol-file -o`).
    pub kaslr_offset: u64,
    /// Per-CPU symbols are zero-based offsets (x86_64 before 6.15): keep
    /// `.data..percpu` at 0 so `$lx_per_cpu` and friends stay exact.
    pub percpu_zero_based: bool,
}

/// The GDB command line: `gdb -q`, the vmlinux at the run-time addresses
/// (`add-symbol-file V -o OFFSET [-s .data..percpu 0]`), `target remote`,
/// `source kpeek.py`, then `extra` (the user's own arguments); `KPEEK` set
/// to this kpeek, so kpeek.py runs the same binary.
pub fn gdb_command(
    gdb: &OsStr,
    remote: &Remote,
    script: &Path,
    kpeek: &Path,
    extra: &[OsString],
) -> Command {
    let mut cmd = Command::new(gdb);
    cmd.env("KPEEK", kpeek).arg("-q");
    let mut ex = |s: String| {
        cmd.arg("-ex").arg(s);
    };
    if let Some(v) = &remote.vmlinux {
        let mut add = format!(
            "add-symbol-file {} -o {:#x}",
            gdb_quote(&v.display().to_string()),
            remote.kaslr_offset
        );
        if remote.percpu_zero_based {
            add.push_str(" -s .data..percpu 0");
        }
        // add-symbol-file asks "(y or n)" on a terminal.
        ex("set confirm off".into());
        ex(add);
        ex("set confirm on".into());
    }
    ex(format!("target remote {}", remote.address));
    ex(format!(
        "source {}",
        gdb_quote(&script.display().to_string())
    ));
    cmd.args(extra);
    cmd
}

/// A file name as GDB's command line reads it (spaces and quotes escaped).
fn gdb_quote(s: &str) -> String {
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        let escaped: String = s
            .chars()
            .flat_map(|c| {
                let esc = matches!(c, '"' | '\\').then_some('\\');
                esc.into_iter().chain(std::iter::once(c))
            })
            .collect();
        format!("\"{escaped}\"")
    } else {
        s.to_owned()
    }
}

/// A dump served in the background (see [`serve_in_background`]).
#[derive(Clone, Copy, Debug)]
pub struct Background {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The kernel's KASLR offset.
    pub kaslr_offset: u64,
    /// See [`Remote::percpu_zero_based`].
    pub percpu_zero_based: bool,
    /// How many tasks are served.
    pub tasks: usize,
}

/// Serve `prog` on a free loopback port from a background thread, for as
/// long as the process lives (the program is kept until then).
pub fn serve_in_background(prog: Program) -> Result<Background> {
    let prog: &'static Program = Box::leak(Box::new(prog));
    let snap = Snapshot::gather(prog)?;
    let io = |source| Error::Io {
        path: "127.0.0.1:0".into(),
        source,
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let facts = Background {
        addr,
        kaslr_offset: snap.kaslr_offset(),
        percpu_zero_based: snap.percpu_zero_based(),
        tasks: snap.tasks.tasks.len(),
    };
    std::thread::spawn(move || serve(&snap, &listener, &|_: super::Event<'_>| {}));
    Ok(facts)
}

/// A private temporary directory for kpeek.py, removed on drop.
pub struct ScriptDir {
    dir: PathBuf,
    /// kpeek.py in it.
    pub script: PathBuf,
}

impl ScriptDir {
    /// Create it and write kpeek.py.
    pub fn new() -> Result<ScriptDir> {
        let dir = std::env::temp_dir().join(format!("kpeek-gdb-{}", std::process::id()));
        let script = install_script(&dir)?;
        Ok(ScriptDir { dir, script })
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `cmd` (GDB) in the foreground and wait for it. Ctrl-C is GDB's (it
/// interrupts the target): kpeek, in the same process group, ignores it
/// meanwhile, so the server GDB talks to stays up.
pub fn run_foreground(cmd: &mut Command) -> Result<std::process::ExitStatus> {
    let program = PathBuf::from(cmd.get_program());
    // SAFETY: signal() with SIG_IGN installs no handler code; GDB sets its
    // own SIGINT handler after exec.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let status = cmd.status();
    // SAFETY: as above, restoring what was there.
    unsafe { libc::signal(libc::SIGINT, previous) };
    status.map_err(|source| Error::Io {
        path: program,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_gdb_gets() {
        let remote = Remote {
            address: "127.0.0.1:4321".into(),
            vmlinux: Some("/k/my vmlinux".into()),
            kaslr_offset: 0x2e00_0000,
            percpu_zero_based: true,
        };
        let cmd = gdb_command(
            "gdb".as_ref(),
            &remote,
            Path::new("/t/kpeek.py"),
            Path::new("/bin/kpeek"),
            &["-ex".into(), "info threads".into()],
        );
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "-q",
                "-ex",
                "set confirm off",
                "-ex",
                "add-symbol-file \"/k/my vmlinux\" -o 0x2e000000 -s .data..percpu 0",
                "-ex",
                "set confirm on",
                "-ex",
                "target remote 127.0.0.1:4321",
                "-ex",
                "source /t/kpeek.py",
                "-ex",
                "info threads",
            ]
        );
        let kpeek = cmd.get_envs().find(|(k, _)| *k == OsStr::new("KPEEK"));
        assert_eq!(
            kpeek,
            Some((OsStr::new("KPEEK"), Some(OsStr::new("/bin/kpeek"))))
        );
    }

    #[test]
    fn the_built_in_script_is_the_repositorys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = install_script(&dir.path().join("sub")).expect("install");
        let repo = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts/kpeek.py"),
        )
        .expect("gdb-scripts/kpeek.py");
        assert_eq!(std::fs::read_to_string(path).expect("read"), repo);
    }
}
