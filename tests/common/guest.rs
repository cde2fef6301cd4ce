//! Live fixture guests: a fixture kernel booted under QEMU (TCG, KASLR
//! on) from the committed bzImage and initramfs, its truth on ttyS1, and
//! the rules its tasks and stacks are compared by.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Fixture, Truth};

/// A running guest; killed when dropped.
pub struct Guest {
    pub qemu: Child,
    pub dir: PathBuf,
    /// QEMU's gdbstub, on 127.0.0.1.
    pub port: u16,
}

/// How to boot a [`Guest`] other than the default.
#[derive(Default)]
pub struct Setup {
    /// The initramfs (default: the fixture's `main.cpio.gz`).
    pub initrd: Option<PathBuf>,
    /// `-m` (default `128M`).
    pub mem: Option<&'static str>,
    /// Save ttyS2 to `DIR/ttyS2.log` (default: discarded).
    pub third_serial: bool,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Guest {
    /// Boot and wait for the guest's truth (at most 3 minutes under TCG).
    pub fn boot(fixture: &Fixture, append: &str) -> Guest {
        Guest::boot_with(fixture, append, &Setup::default())
    }

    /// [`Guest::boot`] with a different initramfs, memory size, or the
    /// third serial port (ttyS2) saved to `ttyS2.log`.
    pub fn boot_with(fixture: &Fixture, append: &str, setup: &Setup) -> Guest {
        let dir = std::env::temp_dir().join(format!(
            "kpeek-live-{}-{}",
            fixture.name,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let port = free_port();
        let qemu = Command::new(super::require_tool("qemu-system-x86_64"))
            .args([
                "-machine",
                "pc",
                "-cpu",
                "qemu64",
                "-m",
                setup.mem.unwrap_or("128M"),
                "-smp",
                "2",
                "-nographic",
                "-no-reboot",
            ])
            .args([
                "-vga", "none", "-nic", "none", "-monitor", "none", "-display", "none",
            ])
            .arg("-kernel")
            .arg(fixture.kernel_file("bzImage"))
            .arg("-initrd")
            .arg(
                setup
                    .initrd
                    .clone()
                    .unwrap_or_else(|| fixture.kernel_file("initramfs/main.cpio.gz")),
            )
            .args([
                "-append",
                &format!("console=ttyS0 panic=-1 init_on_free=1 {append}"),
            ])
            .args([
                "-serial",
                &format!("file:{}", dir.join("console.log").display()),
            ])
            .args([
                "-serial",
                &format!("file:{}", dir.join("truth.jsonl").display()),
            ])
            .args([
                "-serial",
                &if setup.third_serial {
                    format!("file:{}", dir.join("ttyS2.log").display())
                } else {
                    "null".to_owned()
                },
            ])
            .args(["-gdb", &format!("tcp:127.0.0.1:{port}")])
            .args([
                "-qmp",
                &format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64 (apt-get install qemu-system-x86)");
        let guest = Guest { qemu, dir, port };
        let deadline = Instant::now() + Duration::from_secs(180);
        while !std::fs::read_to_string(guest.dir.join("truth.jsonl"))
            .unwrap_or_default()
            .contains("\"kind\":\"end\"")
        {
            assert!(
                Instant::now() < deadline,
                "{}: no truth from the guest in 3 minutes",
                fixture.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        guest
    }

    pub fn truth(&self) -> Truth {
        Truth::load(&self.dir.join("truth.jsonl"))
    }

    /// QMP `query-status`: is the guest running?
    pub fn running(&self) -> bool {
        let sock = UnixStream::connect(self.dir.join("qmp.sock")).expect("qmp");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(sock.try_clone().expect("clone"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("greeting");
        let mut w = sock;
        for cmd in ["qmp_capabilities", "query-status"] {
            writeln!(w, "{{\"execute\":\"{cmd}\"}}").expect("send");
            loop {
                line.clear();
                reader.read_line(&mut line).expect("reply");
                if !line.contains("\"event\"") {
                    break;
                }
            }
        }
        line.contains("\"running\": true")
    }
}

/// The same rules as for dumps (docs/TESTING.md): every task the guest
/// listed, with its ids, comm, kernel-thread flag and (user tasks) state;
/// beyond it only the idle tasks and a few kernel threads born since.
pub fn check_tasks(fixture: &Fixture, tasks: &[serde_json::Value], truth: &Truth) {
    check_tasks_beyond(fixture, tasks, truth, 2..=5);
}

/// [`check_tasks`], with `extra` tasks allowed beyond the truth.
pub fn check_tasks_beyond(
    fixture: &Fixture,
    tasks: &[serde_json::Value],
    truth: &Truth,
    extra: std::ops::RangeInclusive<usize>,
) {
    for want in &truth.tasks {
        let got = tasks
            .iter()
            .find(|t| t["pid"].as_i64() == Some(want.tid))
            .unwrap_or_else(|| panic!("{}: pid {} {} missing", fixture.name, want.tid, want.comm));
        assert_eq!(
            got["tgid"].as_i64(),
            Some(want.tgid),
            "{}: {}",
            fixture.name,
            want.comm
        );
        assert_eq!(
            got["ppid"].as_i64(),
            Some(want.ppid()),
            "{}: {}",
            fixture.name,
            want.comm
        );
        assert_eq!(
            got["kthread"].as_bool(),
            Some(want.is_kthread()),
            "{}: {}",
            fixture.name,
            want.comm
        );
        let comm = got["comm"].as_str().expect("comm");
        if want.is_kthread() {
            assert!(
                want.comm.starts_with(comm),
                "{}: {comm} vs {}",
                fixture.name,
                want.comm
            );
        } else {
            assert_eq!(comm, want.comm, "{}", fixture.name);
            let state = want.state().to_string();
            assert_eq!(
                got["state"].as_str(),
                Some(state.as_str()),
                "{}: {comm}",
                fixture.name
            );
        }
    }
    let beyond = tasks.len() - truth.tasks.len();
    assert!(
        extra.contains(&beyond),
        "{}: {beyond} tasks beyond the truth",
        fixture.name
    );
}

/// `kpeek bt --style proc` (or `lx-bt` through GDB) against the guest's
/// /proc/PID/stack, for the tasks that did not run since it listed them
/// (their context switch counts in the same trace equal the listing's).
pub fn check_stacks(fixture: &Fixture, bt: &str, truth: &Truth) {
    let bt: serde_json::Value = serde_json::from_str(bt).expect("bt json");
    let mut compared = 0;
    let tasks = bt["tasks"].as_array().expect("tasks");
    let proc = bt["proc"].as_array().expect("proc");
    for (task, lines) in tasks.iter().zip(proc) {
        let pid = task["pid"].as_i64().unwrap_or(-1);
        let Some(want) = truth.tasks.iter().find(|t| t.tid == pid) else {
            continue;
        };
        let field = |name: &str| {
            want.status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim_start_matches(':')
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        let listed = serde_json::json!([
            field("voluntary_ctxt_switches"),
            field("nonvoluntary_ctxt_switches")
        ]);
        if task["switches"] != listed || task["start"]["from"] != "switched" {
            continue;
        }
        compared += 1;
        let got: Vec<&str> = lines
            .as_array()
            .expect("lines")
            .iter()
            .filter_map(|l| l.as_str())
            .collect();
        let want: Vec<&str> = want.stack.as_deref().unwrap_or("").lines().collect();
        assert_eq!(got, want, "{}: pid {pid} through lx-bt", fixture.name);
    }
    assert!(
        compared >= 250,
        "{}: only {compared} stacks compared",
        fixture.name
    );
    eprintln!(
        "{}: bt: {compared} stacks identical to /proc/PID/stack",
        fixture.name
    );
}

/// A newc cpio archive, as the kernel's initramfs unpacker reads it.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: std::collections::BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// `path` (absolute), with every directory above it.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let rel = path.trim_start_matches('/');
        let mut dir = String::new();
        for part in rel.split('/').take(rel.split('/').count() - 1) {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(part);
            if self.dirs.insert(dir.clone()) {
                self.entry(&dir.clone(), 0o040755, &[]);
            }
        }
        self.entry(rel, 0o100000 | mode, data);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

/// The fixture's initramfs with the repository's `guest/init` (whose hook
/// runs `/test/after-truth` once the truth is out) and `files` (path,
/// mode, bytes) appended, written to `dir/initrd.cpio`.
pub fn initrd_with(fixture: &Fixture, dir: &Path, files: &[(String, u32, Vec<u8>)]) -> PathBuf {
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut cpio = Cpio::default();
    cpio.file(
        "/init",
        0o755,
        &read(&super::fixtures_dir().join("guest/init")),
    );
    for (path, mode, data) in files {
        cpio.file(path, *mode, data);
    }
    // The kernel unpacks archives one after another; an uncompressed one
    // starts on a 4-byte boundary.
    let mut initrd = read(&fixture.kernel_file("initramfs/main.cpio.gz"));
    while !initrd.len().is_multiple_of(4) {
        initrd.push(0);
    }
    initrd.extend_from_slice(&cpio.finish());
    let path = dir.join("initrd.cpio");
    std::fs::write(&path, initrd).expect("write initrd");
    path
}
