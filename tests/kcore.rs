//! The running kernel through `/proc/kcore`: each fixture guest runs kpeek
//! against its own `/proc/kcore`, in the same boot in which it recorded
//! its own `/proc` (the truth), and the two are compared. kpeek (stripped,
//! with the shared libraries it links) goes into an initramfs appended to
//! the fixture's, with the repository's `guest/init`, whose hook runs
//! `/test/after-truth` once the truth is out; its output comes back on
//! ttyS2. No vmlinux in the guest: kallsyms and BTF through /proc/kcore.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::guest::{check_stacks, check_tasks_beyond, Guest, Setup};
use common::{Fixture, Truth};

/// The shared libraries `binary` loads, as `ldd` resolves them on this
/// machine (the guest gets the same files at the same paths).
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    assert!(out.status.success(), "ldd {}", binary.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// What the guest runs once its truth is out; each command's output is
/// framed by `@@BEGIN NAME` and `@@END NAME rc=N`.
const AFTER_TRUTH: &str = r#"#!/bin/sh
run() {
    name=$1; shift
    echo "@@BEGIN $name"
    "$@"
    echo "@@END $name rc=$?"
}
cd /tmp
run info kpeek info --kcore --no-debuginfod --format json
run ps kpeek ps --kcore --no-debuginfod --threads --format json
run bt kpeek bt --kcore --no-debuginfod --all --style proc --format json
run lsmod kpeek lsmod --kcore --no-debuginfod --style proc
run modules cat /proc/modules
run dmesg kpeek dmesg --kcore --no-debuginfod --raw --caller
run nobody su -s /bin/sh nobody -c "/bin/kpeek ps --kcore --no-debuginfod"
echo "@@DONE"
"#;

/// The fixture's initramfs with kpeek (stripped), its libraries and the
/// after-truth hook appended.
fn initrd_with_kpeek(fixture: &Fixture, dir: &Path) -> PathBuf {
    let kpeek = PathBuf::from(env!("CARGO_BIN_EXE_kpeek"));
    let stripped = dir.join("kpeek");
    let status = Command::new(common::require_tool("objcopy"))
        .arg("--strip-debug")
        .arg(&kpeek)
        .arg(&stripped)
        .status()
        .expect("objcopy");
    assert!(status.success(), "objcopy --strip-debug");
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut files = vec![
        ("/bin/kpeek".to_owned(), 0o755, read(&stripped)),
        (
            "/test/after-truth".to_owned(),
            0o755,
            AFTER_TRUTH.as_bytes().to_vec(),
        ),
        // For `su nobody`: the fixture's busybox root has no users.
        (
            "/etc/passwd".to_owned(),
            0o644,
            b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n".to_vec(),
        ),
        (
            "/etc/group".to_owned(),
            0o644,
            b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
        ),
    ];
    for lib in shared_libraries(&kpeek) {
        files.push((lib.display().to_string(), 0o755, read(&lib)));
    }
    common::guest::initrd_with(fixture, dir, &files)
}

/// The sections of the hook's output: name → (output, exit status).
fn sections(log: &str) -> std::collections::BTreeMap<String, (String, i32)> {
    let mut out = std::collections::BTreeMap::new();
    let mut rest = log;
    while let Some(at) = rest.find("@@BEGIN ") {
        rest = &rest[at + 8..];
        let (name, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let end = format!("@@END {name} rc=");
        let Some(stop) = body.find(&end) else { break };
        let rc = body[stop + end.len()..]
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        out.insert(name.trim().to_owned(), (body[..stop].to_owned(), rc));
        rest = &body[stop..];
    }
    out
}

#[test]
fn kpeek_reads_the_running_kernel_through_proc_kcore_like_its_own_proc() {
    for fixture in Fixture::all() {
        let dir = std::env::temp_dir().join(format!(
            "kpeek-kcore-{}-{}",
            fixture.name,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let setup = Setup {
            initrd: Some(initrd_with_kpeek(&fixture, &dir)),
            mem: Some("256M"),
            third_serial: true,
        };
        let guest = Guest::boot_with(&fixture, "", &setup);
        let log_path = guest.dir.join("ttyS2.log");
        let deadline = Instant::now() + Duration::from_secs(240);
        let log = loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("@@DONE") {
                break log;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the guest's kpeek did not finish in 4 minutes; it printed:\n{log}",
                fixture.name
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        let truth = guest.truth();
        let got = sections(&log);
        let section = |name: &str| -> &str {
            let (out, rc) = got
                .get(name)
                .unwrap_or_else(|| panic!("{}: no {name} in:\n{log}", fixture.name));
            assert_eq!(*rc, 0, "{}: kpeek {name} failed:\n{out}", fixture.name);
            out
        };
        check(&fixture, &truth, section);
        // Not root: a clear error, not a crash.
        let (out, rc) = &got["nobody"];
        assert_ne!(*rc, 0, "{}: as nobody: {out}", fixture.name);
        assert!(
            out.contains("needs root"),
            "{}: as nobody: {out}",
            fixture.name
        );
        drop(guest);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn check<'a>(fixture: &Fixture, truth: &Truth, section: impl Fn(&str) -> &'a str) {
    let name = &fixture.name;
    let json = |s: &str| -> serde_json::Value {
        serde_json::from_str(section(s)).unwrap_or_else(|e| panic!("{name}: {s}: {e}"))
    };
    // The kernel found at its KASLR offset, from kcore, proven by its banner.
    let info = json("info");
    assert_eq!(info["kaslr_method"], "kcore", "{name}: {info}");
    assert_eq!(
        info["banner"].as_str().map(str::trim_end),
        Some(truth.files["/proc/version"].trim_end()),
        "{name}"
    );
    assert_eq!(info["types"], "btf", "{name}");
    assert_eq!(info["symbols"], "kallsyms", "{name}");
    assert_eq!(info["vmcoreinfo"], true, "{name}");
    let offset = u64::from_str_radix(
        info["kaslr_offset"]
            .as_str()
            .expect("offset")
            .trim_start_matches("0x"),
        16,
    )
    .expect("hex");
    assert_eq!(
        Some(fixture.vmlinux_text() + offset),
        truth.kallsyms("_text"),
        "{name}: _text"
    );

    // Every task the guest listed; beyond them the idle tasks, the shells
    // running the hook, and kpeek itself, running.
    let ps = json("ps");
    let tasks = ps["tasks"].as_array().expect("tasks");
    check_tasks_beyond(fixture, tasks, truth, 3..=8);
    let me = tasks
        .iter()
        .find(|t| t["comm"] == "kpeek")
        .unwrap_or_else(|| panic!("{name}: kpeek is not in its own listing"));
    assert_eq!(me["state"], "R", "{name}: kpeek itself: {me}");

    // Stacks of the tasks that did not run since the truth.
    check_stacks(fixture, section("bt"), truth);

    // Modules: byte for byte /proc/modules, read at the same moment.
    assert_eq!(section("lsmod"), section("modules"), "{name}: lsmod");
    assert_eq!(
        section("lsmod"),
        truth.files["/proc/modules"],
        "{name}: lsmod vs the truth"
    );

    // The log: the truth's lines, then what was printed since.
    let ours: Vec<&str> = section("dmesg").lines().collect();
    let theirs: Vec<&str> = truth.dmesg.lines().collect();
    assert!(theirs.len() > 100, "{name}: the truth has a log");
    assert!(ours.len() >= theirs.len(), "{name}: dmesg is shorter");
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "{name}: dmesg line {i}");
    }
    eprintln!(
        "{name}: kcore: {} tasks, {} log lines, lsmod equal",
        tasks.len(),
        ours.len()
    );
}

#[test]
fn a_missing_or_foreign_kcore_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("kpeek-kcore-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // No such file.
    let missing = dir.join("no-kcore");
    let out = common::run_kpeek(["ps", "--kcore", missing.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-kcore"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Not a core file.
    let text = dir.join("text");
    std::fs::write(&text, "not an ELF core, just text\n".repeat(10)).expect("write");
    let out = common::run_kpeek(["ps", "--kcore", text.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a kernel core: no ELF magic"), "{err}");
    // A QEMU dump is an x86_64 ELF core too, but of physical memory: no
    // kernel-text segment at a kernel virtual address.
    let fixture = &Fixture::all()[0];
    let dump = fixture.boot("qemu-plain").dir.join("vmcore.elf");
    let out = common::run_kpeek(["ps", "--kcore", dump.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no kernel-text segment"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
