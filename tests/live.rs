//! Live guests: each fixture kernel booted under QEMU (TCG, KASLR on) from
//! the committed bzImage and initramfs, read through its gdbstub by
//! `kpeek ps --qemu`, checked against the truth the guest printed.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::guest::{check_stacks, check_tasks, free_port, Guest};
use common::Fixture;

/// `kpeek ARGS --vmlinux V` (ARGS name the guest: `--qemu HOST:PORT`).
fn run_kpeek_with_vmlinux(args: &[&str], vmlinux: &Path) -> Output {
    common::kpeek_command()
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
        let out = run_kpeek_with_vmlinux(
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
        check_tasks(
            &fixture,
            json["tasks"].as_array().expect("tasks"),
            &guest.truth(),
        );
        assert!(
            guest.running(),
            "{}: the guest was left stopped",
            fixture.name
        );
        // No vmlinux: the guest's own kallsyms (found in the read-only data
        // its page tables show) and BTF. The same tasks as with the vmlinux
        // and as the guest's /proc, in a bounded number of packets.
        let t = Instant::now();
        let alone = common::kpeek_command()
            .args(["ps", "--threads", "--format", "json", "--qemu", &qemu])
            .env("KPEEK_TRACE_RSP", "1")
            .output()
            .expect("kpeek");
        let took = t.elapsed();
        let trace = String::from_utf8_lossy(&alone.stderr);
        assert!(alone.status.success(), "{}: {trace}", fixture.name);
        let packets = trace
            .lines()
            .filter(|l| l.starts_with("kpeek: rsp -> m"))
            .count();
        eprintln!(
            "{}: ps --qemu without a vmlinux: {packets} memory packets, {took:?} (traced)",
            fixture.name
        );
        assert!(
            packets < 3000,
            "{}: {packets} packets without a vmlinux",
            fixture.name
        );
        let alone: serde_json::Value = serde_json::from_slice(&alone.stdout).expect("json");
        let tasks = alone["tasks"].as_array().expect("tasks");
        check_tasks(&fixture, tasks, &guest.truth());
        // (The guest ran in between: a kernel thread may have come or gone.)
        let ids = |tasks: &[serde_json::Value]| -> std::collections::BTreeMap<i64, String> {
            tasks
                .iter()
                .map(|t| {
                    let id = format!("{} {} {} {}", t["tgid"], t["ppid"], t["comm"], t["kthread"]);
                    (t["pid"].as_i64().unwrap_or(-1), id)
                })
                .collect()
        };
        let (alone, with) = (ids(tasks), ids(json["tasks"].as_array().expect("tasks")));
        let mut same = 0;
        for (pid, id) in &alone {
            if let Some(w) = with.get(pid) {
                assert_eq!(
                    id, w,
                    "{}: pid {pid} with and without the vmlinux",
                    fixture.name
                );
                same += 1;
            }
        }
        assert!(
            same + 2 >= with.len().max(alone.len()),
            "{}: {same} tasks in common",
            fixture.name
        );
        let info = common::kpeek_command()
            .args(["info", "--format", "json", "--qemu", &qemu])
            .output()
            .expect("kpeek");
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info json");
        assert_eq!(info["types"], "btf", "{}", fixture.name);
        assert_eq!(info["symbols"], "kallsyms", "{}", fixture.name);
        assert!(info["vmlinux"].is_null(), "{}", fixture.name);
        assert_eq!(
            info["banner"].as_str().map(str::trim_end),
            Some(guest.truth().files["/proc/version"].trim_end()),
            "{}",
            fixture.name
        );
        assert!(guest.running(), "{}: left stopped", fixture.name);
        // Kernel stacks of the live guest, with the CPUs' registers from the gdbstub.
        let out = run_kpeek_with_vmlinux(
            &[
                "bt", "--all", "--cpus", "--style", "proc", "--format", "json", "--qemu", &qemu,
            ],
            &fixture.vmlinux(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bt = String::from_utf8_lossy(&out.stdout);
        check_stacks(&fixture, &bt, &guest.truth());
        let bt: serde_json::Value = serde_json::from_str(&bt).expect("bt json");
        assert_eq!(
            bt["cpus"].as_array().map(Vec::len),
            Some(2),
            "{}",
            fixture.name
        );

        // The log and the modules, through QEMU's gdbstub: the guest's own
        // syslog is the beginning of kpeek's; /proc/modules exactly.
        let truth = guest.truth();
        let out = run_kpeek_with_vmlinux(
            &["dmesg", "--raw", "--caller", "--qemu", &qemu],
            &fixture.vmlinux(),
        );
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: dmesg", fixture.name);
        let theirs: Vec<&str> = truth.dmesg.lines().collect();
        let ours: Vec<&str> = log.lines().take(theirs.len()).collect();
        assert!(theirs.len() > 150, "{}", fixture.name);
        assert_eq!(ours, theirs, "{}: dmesg --qemu", fixture.name);
        let out = run_kpeek_with_vmlinux(
            &["lsmod", "--style", "proc", "--qemu", &qemu],
            &fixture.vmlinux(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            truth.files["/proc/modules"],
            "{}: lsmod --qemu",
            fixture.name
        );
        assert!(guest.running(), "{}: left stopped", fixture.name);

        // A vmlinux from the other kernel is refused, and the guest still runs.
        let other = Fixture::all()
            .into_iter()
            .find(|f| f.name != fixture.name)
            .expect("two fixtures");
        let out = run_kpeek_with_vmlinux(&["ps", "--qemu", &qemu], &other.vmlinux());
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

/// Real GDB, attached to QEMU's gdbstub.
fn gdb(fixture: &Fixture, port: u16, commands: &[&str]) -> String {
    let mut cmd = Command::new(common::require_tool("gdb"));
    cmd.args([
        "-nx",
        "-batch",
        "-ex",
        "set pagination off",
        "-ex",
        "set width 0",
    ])
    .arg("-ex")
    .arg(format!("file {}", fixture.vmlinux().display()))
    .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
    .env("KPEEK", env!("CARGO_BIN_EXE_kpeek"));
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let out = cmd.output().expect("gdb (apt-get install gdb)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Traceback") && !stderr.contains("Python Exception"),
        "{}: {stderr}",
        fixture.name
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("gdb-scripts/kpeek.py")
        .display()
        .to_string()
}

/// The text between two marker lines of GDB's output.
fn between(out: &str, from: &str, to: &str) -> String {
    out.split(from)
        .nth(1)
        .and_then(|r| r.split(to).next())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn the_gdb_extension_lists_a_kaslr_guest_like_its_own_proc() {
    for fixture in Fixture::all() {
        let guest = Guest::boot(&fixture, "");
        let source = format!("source {}", script());
        // lx-symbols: the vmlinux moved by the KASLR offset, the module's
        // .ko added at its sections' addresses; checked against kallsyms.
        let truth = guest.truth();
        let module_kallsyms = |name: &str| {
            truth.files["/proc/kallsyms"].lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4 && f[2] == name && f[3] == "[kpeek_fixture]")
                    .then(|| u64::from_str_radix(f[0], 16).ok())
                    .flatten()
            })
        };
        let thread_fn = module_kallsyms("kpeek_fixture_thread").expect("kallsyms");
        let counter = module_kallsyms("kpeek_fixture_counter").expect("kallsyms");
        let ko_dir = fixture.kernel_file("kpeek_fixture.ko");
        let lx_symbols = format!("lx-symbols {}", ko_dir.parent().expect("dir").display());
        let info_counter = format!("info symbol {counter:#x}");
        let out = gdb(
            &fixture,
            guest.port,
            &[
                &source,
                "echo @@SYMBOLS\\n",
                &lx_symbols,
                "p/x (unsigned long)&linux_banner",
                "info address kpeek_fixture_thread",
                &info_counter,
                "info line kpeek_fixture_thread",
                "echo @@JSON\\n",
                "kpeek ps --threads --format json",
                "echo @@LXPS\\n",
                "lx-ps",
                "echo @@STATS\\n",
                "kpeek stats",
                "echo @@BT\\n",
                "lx-bt --all --style proc --format json",
                "echo @@CPUS\\n",
                "lx-bt",
                "echo @@END\\n",
            ],
        );
        let symbols = between(&out, "@@SYMBOLS\n", "@@JSON");
        let banner = truth.kallsyms("linux_banner").expect("kallsyms");
        assert!(
            symbols.contains(&format!("= {banner:#x}")),
            "{}: linux_banner after lx-symbols:\n{symbols}",
            fixture.name
        );
        assert!(
            symbols.contains(&format!("is a function at address {thread_fn:#x}")),
            "{}: the module's function at its kallsyms address:\n{symbols}",
            fixture.name
        );
        assert!(
            symbols.contains("kpeek_fixture_counter in section .data"),
            "{}: the module's data at its kallsyms address:\n{symbols}",
            fixture.name
        );
        assert!(
            symbols.contains("kpeek_fixture.c\" starts at address"),
            "{}: the module's source lines:\n{symbols}",
            fixture.name
        );
        let json: serde_json::Value = serde_json::from_str(&between(&out, "@@JSON\n", "@@LXPS"))
            .expect("kpeek ps json through gdb");
        check_tasks(&fixture, json["tasks"].as_array().expect("tasks"), &truth);
        check_stacks(&fixture, &between(&out, "@@BT\n", "@@CPUS"), &truth);
        let cpus = between(&out, "@@CPUS\n", "@@END");
        assert!(
            cpus.starts_with("CPU 0") && cpus.contains("\nCPU 1"),
            "{}: lx-bt printed {cpus:?}",
            fixture.name
        );
        let lx = between(&out, "@@LXPS\n", "@@STATS");
        assert_eq!(
            lx.lines().next(),
            Some("      TASK          PID    COMM"),
            "{}",
            fixture.name
        );
        let rows = lx.lines().count() - 1;
        assert!(
            rows >= truth.tasks.len() && rows <= truth.tasks.len() + 4,
            "{}: {rows} rows",
            fixture.name
        );
        // Few, large reads: lx-ps costs about one read per task.
        let stats = between(&out, "@@STATS\n", "@@BT");
        let reads: usize = stats
            .split_whitespace()
            .nth(1)
            .and_then(|r| r.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no read count in {stats:?}"));
        assert!(
            reads <= 2 * rows,
            "{}: lx-ps made {reads} reads for {rows} tasks",
            fixture.name
        );
        assert!(
            guest.running(),
            "{}: GDB and kpeek left the guest stopped",
            fixture.name
        );

        // GDB with no file: kpeek.py's kpeek rpc finds the kernel from the
        // CPUs' pcs, its kallsyms and BTF through GDB's reads.
        let t = Instant::now();
        let out = gdb_without_file(
            guest.port,
            &[
                &source,
                "echo @@JSON\n",
                "kpeek ps --threads --format json",
                "echo @@INFO\n",
                "kpeek info --format json",
                "echo @@STATS\n",
                "kpeek stats",
                "echo @@END\n",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&between(&out, "@@JSON\n", "@@INFO"))
            .unwrap_or_else(|e| panic!("{}: kpeek ps without a file: {e}\n{out}", fixture.name));
        check_tasks(&fixture, json["tasks"].as_array().expect("tasks"), &truth);
        let info: serde_json::Value =
            serde_json::from_str(&between(&out, "@@INFO\n", "@@STATS")).expect("info json");
        assert_eq!(info["symbols"], "kallsyms", "{}", fixture.name);
        assert_eq!(info["types"], "btf", "{}", fixture.name);
        assert_eq!(
            info["banner"].as_str().map(str::trim_end),
            Some(truth.files["/proc/version"].trim_end()),
            "{}",
            fixture.name
        );
        eprintln!(
            "{}: kpeek.py without a vmlinux: ps and info in {:?}; {}",
            fixture.name,
            t.elapsed(),
            between(&out, "@@STATS\n", "@@END").trim()
        );
        assert!(guest.running(), "{}: left stopped", fixture.name);
    }
}

/// Real GDB with no symbol file, attached to QEMU's gdbstub.
fn gdb_without_file(port: u16, commands: &[&str]) -> String {
    let mut cmd = Command::new(common::require_tool("gdb"));
    cmd.args([
        "-nx",
        "-batch",
        "-ex",
        "set pagination off",
        "-ex",
        "set width 0",
    ])
    .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
    .env("KPEEK", env!("CARGO_BIN_EXE_kpeek"));
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let out = cmd.output().expect("gdb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Traceback") && !stderr.contains("Python Exception"),
        "{stderr}"
    );
    format!("{}{stderr}", String::from_utf8_lossy(&out.stdout))
}

#[test]
fn kpeek_py_lx_ps_prints_exactly_what_the_kernels_own_lx_ps_prints() {
    // lx-ps, then the other commands both have; one boot of each kernel.
    let commands = [
        "lx-ps",
        "lx-dmesg",
        "lx-lsmod",
        "lx-version",
        "lx-cmdline",
        "lx-cpus",
        "p $lx_current(0).pid",
        "p $lx_task_by_pid(1).comm",
        "p $lx_module(\"kpeek_fixture\").name",
        "p $lx_module(\"kpeek_fixture\").state",
        "p $container_of(init_task.tasks.next, \"struct task_struct\", \"tasks\")->pid",
        "p $lx_thread_info($lx_task_by_pid(1)).flags",
        "p $lx_thread_info_by_pid(1).flags",
    ];
    for fixture in Fixture::all() {
        let guest = Guest::boot(&fixture, "nokaslr");
        let kernel_scripts = format!(
            "source {}",
            fixture.kernel_file("gdb/vmlinux-gdb.py").display()
        );
        let ours = format!("source {}", script());
        // One session, one stopped guest: the kernel's commands, then kpeek's
        // (whose functions are $kpeek_* while the kernel's are registered).
        let mut script = vec![kernel_scripts];
        for (i, c) in commands.iter().enumerate() {
            script.push(format!("echo @@KERNEL{i}\\n"));
            script.push((*c).to_owned());
        }
        script.push(ours);
        for (i, c) in commands.iter().enumerate() {
            script.push(format!("echo @@KPEEK{i}\\n"));
            script.push(
                c.replace("$lx_", "$kpeek_")
                    .replace("$container_of", "$kpeek_container_of"),
            );
        }
        script.push("echo @@END\\n".to_owned());
        let script: Vec<&str> = script.iter().map(String::as_str).collect();
        let out = gdb(&fixture, guest.port, &script);
        for (i, cmd) in commands.iter().enumerate() {
            let next_kernel = if i + 1 < commands.len() {
                format!("@@KERNEL{}", i + 1)
            } else {
                "@@KPEEK0".to_owned()
            };
            let next_kpeek = if i + 1 < commands.len() {
                format!("@@KPEEK{}", i + 1)
            } else {
                "@@END".to_owned()
            };
            let theirs = between(&out, &format!("@@KERNEL{i}\n"), &next_kernel);
            let mine = between(&out, &format!("@@KPEEK{i}\n"), &next_kpeek);
            // `print` numbers its results: compare what follows ` = `.
            let value = |s: &str| match s.strip_prefix('$') {
                Some(p) => p
                    .split_once(" = ")
                    .map_or(s.to_owned(), |(_, v)| v.to_owned()),
                None => s.to_owned(),
            };
            assert!(
                !theirs.trim().is_empty(),
                "{}: the kernel's {cmd} printed nothing:\n{out}",
                fixture.name
            );
            assert_eq!(
                value(&mine),
                value(&theirs),
                "{}: kpeek.py {cmd} differs from the kernel's",
                fixture.name
            );
        }
        let lx_ps = between(&out, "@@KERNEL0\n", "@@KERNEL1");
        assert!(
            lx_ps.lines().count() > 300,
            "{}: the kernel's lx-ps printed {lx_ps:?}",
            fixture.name
        );
        let dmesg = between(&out, "@@KERNEL1\n", "@@KERNEL2");
        assert!(dmesg.lines().count() > 150, "{}: lx-dmesg", fixture.name);
        assert!(
            between(&out, "@@KERNEL2\n", "@@KERNEL3").contains("kpeek_fixture"),
            "{}: lx-lsmod",
            fixture.name
        );
    }
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let fixture = Fixture::load("linux-6.12");
    let port = free_port();
    let out = run_kpeek_with_vmlinux(
        &["ps", "--qemu", &format!("127.0.0.1:{port}")],
        &fixture.vmlinux(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing is listening"), "{err}");
}

/// A fake gdbstub that answers the handshake like QEMU, then hangs up at
/// the first memory read: kpeek must say so and stop, not hang.
#[test]
fn a_connection_dropped_mid_read_is_a_clear_error() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stub = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let xml = "<target><architecture>i386:x86-64</architecture><feature name=\"x\">\
                   <reg name=\"rip\" bitsize=\"64\"/><reg name=\"cr3\" bitsize=\"64\"/><reg name=\"cr4\" bitsize=\"64\"/>\
                   </feature></target>";
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            // One packet: $...#xx (acks are skipped).
            buf.clear();
            loop {
                if s.read(&mut byte).unwrap_or(0) == 0 {
                    return;
                }
                if byte[0] == b'$' {
                    break;
                }
            }
            loop {
                if s.read(&mut byte).unwrap_or(0) == 0 {
                    return;
                }
                if byte[0] == b'#' {
                    let mut ck = [0u8; 2];
                    let _ = s.read_exact(&mut ck);
                    break;
                }
                buf.push(byte[0]);
            }
            let req = String::from_utf8_lossy(&buf).into_owned();
            let reply = if req.starts_with("qSupported") {
                "PacketSize=1000;qXfer:features:read+".to_owned()
            } else if req == "?" {
                "T05thread:01;".to_owned()
            } else if req.starts_with("qXfer:features:read:target.xml:0,") {
                format!("l{xml}")
            } else if req == "qfThreadInfo" {
                "m01".to_owned()
            } else if req == "qsThreadInfo" {
                "l".to_owned()
            } else if req.starts_with("Hg") || req.starts_with("Qqemu.PhyMemMode") {
                "OK".to_owned()
            } else if req == "g" {
                // rip, cr3 = 0x1000, cr4: 24 bytes, little-endian hex.
                format!("{}{}{}", "00".repeat(8), "0010000000000000", "00".repeat(8))
            } else if req.starts_with('m') {
                return; // hang up mid-read
            } else {
                String::new()
            };
            let sum = reply.bytes().fold(0u8, |a, b| a.wrapping_add(b));
            let _ = write!(s, "+${reply}#{sum:02x}");
        }
    });
    let fixture = Fixture::load("linux-6.12");
    let t = Instant::now();
    let out = run_kpeek_with_vmlinux(
        &["ps", "--qemu", &format!("127.0.0.1:{port}")],
        &fixture.vmlinux(),
    );
    let _ = stub.join();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("kpeek said: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The real cause, not a KASLR failure it led to.
    assert!(err.contains("the connection was closed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(30), "kpeek hung");
}

/// kpeek.py failing (no target, no kpeek binary) is a GDB error, and GDB
/// goes on working.
#[test]
fn gdb_stays_usable_when_kpeek_py_fails() {
    let fixture = Fixture::load("linux-6.12");
    for (kpeek_env, want) in [
        (
            env!("CARGO_BIN_EXE_kpeek").to_owned(),
            "not attached to a target",
        ),
        ("/nonexistent/kpeek".to_owned(), "kpeek"),
    ] {
        let out = Command::new(common::require_tool("gdb"))
            .args(["-nx", "-batch", "-ex"])
            .arg(format!("file {}", fixture.vmlinux().display()))
            .args([
                "-ex",
                &format!("source {}", script()),
                "-ex",
                "lx-ps",
                "-ex",
                "print 6*7",
            ])
            .env("KPEEK", kpeek_env)
            .output()
            .expect("gdb");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(stderr.contains(want), "{stderr}");
        assert!(
            !stderr.contains("Traceback") && !stderr.contains("Python Exception"),
            "{stderr}"
        );
        assert!(
            stdout.contains("= 42"),
            "GDB went on after the error:\n{stdout}\n{stderr}"
        );
    }
}

/// `kpeek gdb --qemu` on a KASLR guest: GDB attached to QEMU with the
/// vmlinux at the run-time addresses kpeek found (`p linux_banner` reads the
/// guest's /proc/version) and the built-in kpeek.py sourced (`kpeek ps`
/// through it lists the guest's /proc); the guest runs again afterwards.
#[test]
fn kpeek_gdb_attaches_to_a_live_guest_with_symbols_and_kpeek_py() {
    let fixture = Fixture::load("linux-6.12");
    let guest = Guest::boot(&fixture, "");
    let out = Command::new(env!("CARGO_BIN_EXE_kpeek"))
        .args(["gdb", "--qemu", &format!("127.0.0.1:{}", guest.port)])
        .arg("--vmlinux")
        .arg(fixture.vmlinux())
        .args(["--", "-nx", "-batch", "-ex", "set pagination off"])
        .args(["-ex", "echo @@BANNER\\n", "-ex", "x/s &linux_banner"])
        .args([
            "-ex",
            "echo @@JSON\\n",
            "-ex",
            "kpeek ps --threads --format json",
        ])
        .args(["-ex", "echo @@END\\n"])
        .stdin(Stdio::null())
        .output()
        .expect("kpeek gdb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let truth = guest.truth();
    let banner = between(&stdout, "@@BANNER\n", "@@JSON");
    let version = truth.files["/proc/version"].trim_end();
    assert!(
        banner.contains(&format!("\"{version}")),
        "x/s &linux_banner: {banner:?}, /proc/version: {version:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&between(&stdout, "@@JSON\n", "@@END"))
        .unwrap_or_else(|e| panic!("kpeek ps through kpeek gdb: {e}\n{stdout}\n{stderr}"));
    check_tasks(&fixture, json["tasks"].as_array().expect("tasks"), &truth);
    assert!(guest.running(), "kpeek gdb left the guest stopped");
}

/// `kpeek hung --qemu` and kpeek.py's `lx-hung` on a live guest in the
/// fixture module's hung mode (the fixtures built with it: those with a
/// `hung` boot): every lock the module says a task waits on, with the owner
/// the module says holds it, and the ABBA deadlock as a cycle.
#[test]
fn hung_on_a_live_guest_equals_the_modules_record() {
    let fixtures: Vec<Fixture> = Fixture::all()
        .into_iter()
        .filter(|f| f.boot_names().iter().any(|b| b == "hung"))
        .collect();
    assert!(!fixtures.is_empty(), "no fixture has the hung mode");
    for fixture in fixtures {
        let guest = Guest::boot(&fixture, "kpeek.mode=hung");
        let truth = guest.truth();
        let records = common::module_records(&truth);
        let holder = |addr: u64| records.iter().find(|r| r.holds && r.addr == addr);
        let qemu = format!("127.0.0.1:{}", guest.port);
        let out = run_kpeek_with_vmlinux(
            &["hung", "--format", "json", "--qemu", &qemu],
            &fixture.vmlinux(),
        );
        assert!(
            out.status.success(),
            "{}: {}",
            fixture.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let tasks: Vec<&serde_json::Value> = json["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["tasks"].as_array().expect("tasks"))
            .collect();
        let waits: Vec<_> = records.iter().filter(|r| !r.holds).collect();
        assert_eq!(waits.len(), 8, "{records:?}");
        for w in &waits {
            let t = tasks
                .iter()
                .find(|t| t["pid"] == w.pid)
                .unwrap_or_else(|| panic!("pid {} {} not listed", w.pid, w.comm));
            assert_eq!(t["waits"]["lock"], format!("{:#x}", w.addr), "{t}");
            match holder(w.addr) {
                Some(h) => assert_eq!(t["waits"]["owner"]["pid"], h.pid, "{t}"),
                None => assert_eq!(t["waits"]["owner"]["kind"], "not_tracked", "{t}"),
            }
        }
        let abba: std::collections::BTreeSet<i64> = records
            .iter()
            .filter(|r| r.holds && r.ty == "mutex")
            .map(|r| i64::from(r.pid))
            .collect();
        let cycles = json["cycles"].as_array().expect("cycles");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        let cycle: std::collections::BTreeSet<i64> = cycles[0]["pids"]
            .as_array()
            .expect("pids")
            .iter()
            .filter_map(|p| p.as_i64())
            .collect();
        assert_eq!(cycle, abba);
        assert!(
            guest.running(),
            "{}: the guest was left stopped",
            fixture.name
        );

        // Through GDB: kpeek.py's lx-hung names the same cycle.
        let gdb_out = gdb(
            &fixture,
            guest.port,
            &[
                &format!("source {}", script()),
                "echo ==hung==\\n",
                "lx-hung",
            ],
        );
        let text = between(&gdb_out, "==hung==", "\u{0}");
        assert!(text.contains("DEADLOCK: a cycle of 2 tasks"), "{text}");
        for pid in &abba {
            assert!(text.contains(&format!("pid {pid} kpeek_abba_")), "{text}");
        }
        for w in &waits {
            assert!(text.contains(&format!("{:#x}", w.addr)), "{text}");
        }
    }
}

/// QEMU on this host: kpeek reads the guest's RAM from the QEMU process
/// (`/proc/PID/mem`, found with the monitor's `info mtree -f` and
/// `gpa2hva` through the gdbstub) and says so in `kpeek info`; the tasks
/// equal the guest's /proc and those read through the gdbstub alone
/// (`KPEEK_QEMU_MEMORY=gdbstub`), and static memory reads back the same
/// bytes either way.
#[test]
fn a_guest_on_this_host_is_read_from_qemus_memory_like_through_the_gdbstub() {
    for fixture in Fixture::all() {
        let guest = Guest::boot(&fixture, "");
        let qemu = format!("127.0.0.1:{}", guest.port);
        let pid = guest.qemu.id();
        let run = |args: &[&str], path: &str| {
            let out = common::kpeek_command()
                .args(args)
                .args(["--qemu", &qemu, "--vmlinux"])
                .arg(fixture.vmlinux())
                .env("KPEEK_QEMU_MEMORY", path)
                .output()
                .expect("kpeek");
            assert!(
                out.status.success(),
                "{}: {args:?} ({path}): {}",
                fixture.name,
                String::from_utf8_lossy(&out.stderr)
            );
            out
        };
        let info = run(&["info", "--format", "json"], "auto");
        assert!(
            info.stderr.is_empty(),
            "{}: stderr on a clean run",
            fixture.name
        );
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info json");
        let memory = info["memory"].as_str().unwrap_or_default();
        assert!(
            memory.starts_with(&format!("QEMU process {pid}'s memory (/proc/{pid}/mem)")),
            "{}: {memory:?}",
            fixture.name
        );
        let info = run(&["info", "--format", "json"], "gdbstub");
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info json");
        assert!(
            info["memory"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("the gdbstub at {qemu}")),
            "{}: {}",
            fixture.name,
            info["memory"]
        );
        let truth = guest.truth();
        let ps = |path: &str| -> Vec<serde_json::Value> {
            let out = run(&["ps", "--threads", "--format", "json"], path);
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            let tasks = json["tasks"].as_array().expect("tasks").clone();
            check_tasks(&fixture, &tasks, &truth);
            tasks
        };
        let (direct, stub) = (ps("auto"), ps("gdbstub"));
        // The guest ran between the two runs: a kernel thread may have come
        // or gone; every task in both is the same task.
        let row = |t: &serde_json::Value| {
            format!(
                "{} {} {} {} {}",
                t["pid"], t["tgid"], t["ppid"], t["comm"], t["kthread"]
            )
        };
        let stub_rows: std::collections::BTreeSet<String> = stub.iter().map(row).collect();
        let same = direct
            .iter()
            .filter(|t| stub_rows.contains(&row(t)))
            .count();
        assert!(
            same + 2 >= direct.len().max(stub.len()),
            "{}: {same} of {} tasks read from QEMU's memory equal the gdbstub's {}",
            fixture.name,
            direct.len(),
            stub.len()
        );
        // Memory that does not change: the same bytes both ways.
        for what in [["linux_banner", "256"], ["_text", "8192"]] {
            let args = ["read", what[0], what[1], "--format", "json"];
            assert_eq!(
                run(&args, "auto").stdout,
                run(&args, "gdbstub").stdout,
                "{}: read {what:?}",
                fixture.name
            );
        }
        assert!(guest.running(), "{}: left stopped", fixture.name);
    }
}
