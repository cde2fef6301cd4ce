//! Live guests: each fixture kernel booted under QEMU (TCG, KASLR on) from
//! the committed bzImage and initramfs, read through its gdbstub by
//! `kpeek ps --qemu`, checked against the truth the guest printed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, Truth};

/// A running guest; killed when dropped.
struct Guest {
    qemu: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Guest {
    /// Boot and wait for the guest's truth (at most 3 minutes under TCG).
    fn boot(fixture: &Fixture, append: &str) -> Guest {
        let dir = std::env::temp_dir().join(format!(
            "kpeek-live-{}-{}",
            fixture.name,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let port = free_port();
        let qemu = Command::new("qemu-system-x86_64")
            .args([
                "-machine",
                "pc",
                "-cpu",
                "qemu64",
                "-m",
                "128M",
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
            .arg(fixture.kernel_file("initramfs/main.cpio.gz"))
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
            .args(["-serial", "null", "-gdb", &format!("tcp:127.0.0.1:{port}")])
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

    fn truth(&self) -> Truth {
        Truth::load(&self.dir.join("truth.jsonl"))
    }

    /// QMP `query-status`: is the guest running?
    fn running(&self) -> bool {
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

fn kpeek(args: &[&str], vmlinux: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpeek"))
        .args(args)
        .arg("--vmlinux")
        .arg(vmlinux)
        .output()
        .expect("kpeek")
}

#[test]
fn ps_on_a_live_kaslr_guest_matches_its_own_proc_and_leaves_it_running() {
    for fixture in Fixture::all() {
        let guest = Guest::boot(&fixture, "");
        let qemu = format!("127.0.0.1:{}", guest.port);
        let out = kpeek(
            &["ps", "--threads", "--format", "json", "--qemu", &qemu],
            &fixture.vmlinux(),
        );
        assert!(
            out.status.success(),
            "{}: {}",
            fixture.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let tasks = json["tasks"].as_array().expect("tasks");
        let truth = guest.truth();
        for want in &truth.tasks {
            let got = tasks
                .iter()
                .find(|t| t["pid"].as_i64() == Some(want.tid))
                .unwrap_or_else(|| {
                    panic!("{}: pid {} {} missing", fixture.name, want.tid, want.comm)
                });
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
                assert_eq!(
                    got["state"].as_str(),
                    Some(want.state().to_string().as_str()),
                    "{}: {comm}",
                    fixture.name
                );
            }
        }
        // No more than the idle tasks and a few kernel threads born since the listing.
        let extra = tasks.len() - truth.tasks.len();
        assert!(
            (2..=5).contains(&extra),
            "{}: {extra} tasks beyond the truth",
            fixture.name
        );
        assert!(
            guest.running(),
            "{}: the guest was left stopped",
            fixture.name
        );

        // A vmlinux from the other kernel is refused, and the guest still runs.
        let other = Fixture::all()
            .into_iter()
            .find(|f| f.name != fixture.name)
            .expect("two fixtures");
        let out = kpeek(&["ps", "--qemu", &qemu], &other.vmlinux());
        assert_eq!(out.status.code(), Some(1), "{}", fixture.name);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("does not match") || err.contains("cannot locate"),
            "{err}"
        );
        assert!(
            guest.running(),
            "{}: the guest was left stopped after an error",
            fixture.name
        );
    }
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let fixture = Fixture::load("linux-6.12");
    let port = free_port();
    let out = kpeek(
        &["ps", "--qemu", &format!("127.0.0.1:{port}")],
        &fixture.vmlinux(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing is listening"), "{err}");
}
