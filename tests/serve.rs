//! `kpeek serve` against the real GDB: every task a thread, symbols under
//! KASLR, backtraces of sleeping tasks equal to the guest's /proc/PID/stack,
//! robustness against bad clients, and the kernel's own `lx-ps`.
//!
//! Every child process (server, gdb, kpeek) runs under a deadline; a server
//! is killed when its test ends, pass or fail.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Fixture;

/// No child may take longer than this.
const DEADLINE: Duration = Duration::from_secs(150);
/// Tids of the CPU threads start here (see src/gdbserver/threads.rs).
const CPU_TID_BASE: u64 = 0x80_0000;

/// A running `kpeek serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    started: Instant,
    ready: Duration,
}

impl Server {
    fn start(vmlinux: &Path, core: &Path) -> Server {
        Server::start_with(Some(vmlinux), core, &mut Vec::new())
    }

    /// A server with or without a vmlinux; `printed` gets what it printed
    /// up to its address.
    fn start_with(vmlinux: Option<&Path>, core: &Path, printed: &mut Vec<String>) -> Server {
        Server::start_on(vmlinux, &["--core".as_ref(), core.as_os_str()], printed)
    }

    /// A server of `target` (`--core DUMP`, `--qemu HOST:PORT`).
    fn start_on(
        vmlinux: Option<&Path>,
        target: &[&std::ffi::OsStr],
        printed: &mut Vec<String>,
    ) -> Server {
        let started = Instant::now();
        let mut cmd = common::kpeek_command();
        cmd.arg("serve");
        if let Some(v) = vmlinux {
            cmd.arg("--vmlinux").arg(v);
        }
        let what = format!("{target:?}");
        let mut child = cmd
            .args(target)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kpeek serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            port: 0,
            started,
            ready: Duration::ZERO,
        };
        while server.port == 0 {
            let left = DEADLINE.saturating_sub(started.elapsed());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("kpeek serve {what}: no address printed"));
            printed.push(line.clone());
            if let Some(rest) = line.split("target remote 127.0.0.1:").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                server.port = port.parse().expect("a port number");
            }
        }
        server.ready = started.elapsed();
        std::thread::spawn(move || for _ in rx {});
        server
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).expect("connect to kpeek serve");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        s
    }

    /// Whether the server process is still running.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command to completion within DEADLINE; stdout + stderr.
fn run(cmd: &mut Command) -> (bool, String, String) {
    common::run_to_end(cmd, DEADLINE)
}

/// `gdb -nx -batch VMLINUX -ex 'target remote ADDR' -ex CMD...`: all it printed.
fn gdb(vmlinux: &Path, server: &Server, cmds: &[&str]) -> String {
    let mut c = Command::new(common::require_tool("gdb"));
    c.args(["-nx", "-batch"]).arg(vmlinux);
    c.arg("-ex").arg(format!("target remote {}", server.addr()));
    for cmd in cmds {
        c.arg("-ex").arg(cmd);
    }
    let (_, out, err) = run(&mut c);
    format!("{out}{err}")
}

/// `gdb -nx -batch -ex 'target remote ADDR' -ex CMD...` with no symbol file.
fn gdb_bare(server: &Server, cmds: &[&str]) -> String {
    let mut c = Command::new(common::require_tool("gdb"));
    c.args(["-nx", "-batch"]);
    c.arg("-ex").arg(format!("target remote {}", server.addr()));
    for cmd in cmds {
        c.arg("-ex").arg(cmd);
    }
    let (_, out, err) = run(&mut c);
    format!("{out}{err}")
}

/// One line of `info threads`: GDB's number, the tid, the extra info.
#[derive(Debug)]
struct GdbThread {
    num: u32,
    tid: u64,
    label: String,
}

fn parse_info_threads(out: &str) -> Vec<GdbThread> {
    out.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(['*', ' ']);
            let (num, rest) = line.split_once(char::is_whitespace)?;
            let num: u32 = num.parse().ok()?;
            // `Thread 1.N` (multiprocess ids, gdbstub's), or `Thread N`.
            let rest = rest.trim_start().strip_prefix("Thread ")?;
            let rest = rest.strip_prefix("1.").unwrap_or(rest);
            let (tid, rest) = rest.split_once(" (")?;
            // The label ends at the first ") " (no fixture comm has a parenthesis).
            let (label, _) = rest.split_once(") ")?;
            Some(GdbThread {
                num,
                tid: tid.parse().ok()?,
                label: label.to_owned(),
            })
        })
        .collect()
}

/// The function names of a `bt`, innermost first.
fn bt_functions(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('#')?;
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
            let rest = match rest.split_once(" in ") {
                Some((addr, f)) if addr.starts_with("0x") => f,
                _ => rest,
            };
            Some(rest.split(" (").next()?.to_owned())
        })
        .collect()
}

/// The function names of a /proc/PID/stack (`[<0>] __do_sys_pause+0x29/0x33`).
fn proc_stack_functions(stack: &str) -> Vec<String> {
    stack
        .lines()
        .filter_map(|l| l.split("] ").nth(1)?.split('+').next().map(str::to_owned))
        .collect()
}

fn is_scheduler_frame(f: &str) -> bool {
    f.contains("schedule") || f.contains("switch_to") || f == "context_switch"
}
/// `info threads`' task threads (CPUs left out) against `kpeek ps
/// --threads`' (pid, comm, kernel thread), as sorted labels.
fn assert_threads_are_tasks(threads: &[GdbThread], tasks: &[(i64, String, bool)], what: &str) {
    let mut want: Vec<String> = tasks
        .iter()
        .map(|(pid, comm, kthread)| match kthread {
            true => format!("{pid} [{comm}]"),
            false => format!("{pid} {comm}"),
        })
        .collect();
    let mut have: Vec<String> = threads
        .iter()
        .filter(|t| t.tid < CPU_TID_BASE)
        .map(|t| t.label.split(", on CPU").next().unwrap_or("").to_owned())
        .collect();
    want.sort();
    have.sort();
    assert_eq!(have, want, "{what}");
}

/// `kpeek ps --threads --format json`: (pid, comm, kthread) of every task.
fn kpeek_ps_tasks(vmlinux: &Path, core: &Path) -> Vec<(i64, String, bool)> {
    let (ok, out, err) = run(common::kpeek_command()
        .args(["ps", "--threads", "--format", "json", "--vmlinux"])
        .arg(vmlinux)
        .arg("--core")
        .arg(core));
    assert!(ok, "kpeek ps failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ps JSON");
    v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["pid"].as_i64().expect("pid"),
                t["comm"].as_str().expect("comm").to_owned(),
                t["kthread"].as_bool().expect("kthread"),
            )
        })
        .collect()
}

fn dump(fixture: &str, boot: &str, file: &str) -> (Fixture, PathBuf, PathBuf) {
    let fx = Fixture::load(fixture);
    let core = fx.boot(boot).dir.join(file);
    let vmlinux = fx.vmlinux();
    (fx, vmlinux, core)
}

/// Threads, symbols and a sleeping task's backtrace for one dump.
fn check_dump(fixture: &str, boot: &str, file: &str) {
    let (fx, vmlinux, core) = dump(fixture, boot, file);
    let server = Server::start(&vmlinux, &core);
    let t = Instant::now();
    let out = gdb(
        &vmlinux,
        &server,
        &[
            "info threads",
            "p init_task.comm",
            "p linux_banner",
            "monitor info version",
        ],
    );
    let first_session = t.elapsed();
    eprintln!(
        "{fixture} {boot}/{file}: server ready after {:?}; first GDB session with `info threads` took {first_session:?} (serve start to its end: {:?})",
        server.ready,
        server.started.elapsed()
    );

    // Exactly the tasks of `kpeek ps --threads`, plus the CPUs first.
    let threads = parse_info_threads(&out);
    let tasks = kpeek_ps_tasks(&vmlinux, &core);
    let cpus: Vec<&GdbThread> = threads.iter().filter(|t| t.tid >= CPU_TID_BASE).collect();
    assert_eq!(cpus.len(), 2, "{file}: two CPUs (qemu -smp 2):\n{out}");
    for (i, cpu) in cpus.iter().enumerate() {
        assert_eq!(cpu.num as usize, i + 1, "CPU threads come first, in order");
        assert!(cpu.label.starts_with(&format!("CPU {i}: ")), "{cpu:?}");
    }
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (pid, comm, kthread) in &tasks {
        let label = if *kthread {
            format!("{pid} [{comm}]")
        } else {
            format!("{pid} {comm}")
        };
        *want.entry(label).or_default() += 1;
    }
    let mut have: BTreeMap<String, usize> = BTreeMap::new();
    for t in threads.iter().filter(|t| t.tid < CPU_TID_BASE) {
        let label = t.label.split(", on CPU").next().unwrap_or("").to_owned();
        if let Some(pid) = label.split(' ').next().and_then(|p| p.parse::<u64>().ok()) {
            if pid > 0 {
                assert_eq!(t.tid, pid, "a task's tid is its pid: {t:?}");
            }
        }
        *have.entry(label).or_default() += 1;
    }
    assert_eq!(
        have, want,
        "{file}: info threads lists exactly kpeek ps --threads"
    );
    assert_eq!(threads.len(), tasks.len() + 2);

    assert!(out.contains("= \"swapper/0\\000"), "{out}");
    assert!(
        out.contains("Linux version "),
        "linux_banner (.rodata) lines up:\n{out}"
    );
    assert!(out.contains("kpeek "), "monitor info version:\n{out}");

    // kpw-alpha sleeps in pause(): its backtrace is the guest's /proc/PID/stack.
    assert_alpha_bt(file, &vmlinux, &server, &threads, &fx.boot(boot).truth());
}

/// GDB's `bt` of kpw-alpha (a thread of `threads`) through `server`
/// against its /proc/PID/stack in `truth`.
fn assert_alpha_bt(
    what: &str,
    vmlinux: &Path,
    server: &Server,
    threads: &[GdbThread],
    truth: &common::Truth,
) {
    let alpha = truth
        .tasks
        .iter()
        .find(|t| t.comm == "kpw-alpha")
        .expect("kpw-alpha in the truth");
    let num = threads
        .iter()
        .find(|t| t.label == format!("{} kpw-alpha", alpha.tid))
        .map(|t| t.num)
        .expect("kpw-alpha is a thread");
    let bt = gdb(vmlinux, server, &[&format!("thread {num}"), "bt"]);
    assert_bt_is_proc_stack(what, &bt, alpha.stack.as_deref().unwrap_or(""));
}

/// GDB's `bt` of a task sleeping in pause() against its /proc/PID/stack:
/// it unwinds from the scheduler, and every function of the /proc stack
/// (the scheduler's own left out) is one of its frames.
fn assert_bt_is_proc_stack(what: &str, bt: &str, stack: &str) {
    let want_fns: Vec<String> = proc_stack_functions(stack)
        .into_iter()
        .filter(|f| !is_scheduler_frame(f))
        .collect();
    assert!(want_fns.iter().any(|f| f.contains("pause")), "{want_fns:?}");
    let fns = bt_functions(bt);
    assert!(
        fns.iter().any(|f| f == "__schedule" || f == "schedule"),
        "{fns:?}\n{bt}"
    );
    for f in &want_fns {
        // `entry_SYSCALL_64_after_hwframe` is a label inside `entry_SYSCALL_64`.
        let found = fns
            .iter()
            .any(|g| g == f || (f.starts_with(g.as_str()) && f[g.len()..].starts_with('_')));
        assert!(
            found,
            "{what}: {f} of /proc/PID/stack not in the bt {fns:?}\n{bt}"
        );
    }
}

#[test]
fn linux_6_1_qemu_elf_threads_symbols_backtrace() {
    check_dump("linux-6.1", "qemu-vmcoreinfo", "vmcore.elf");
}

#[test]
fn linux_6_1_kdump_threads_symbols_backtrace() {
    check_dump("linux-6.1", "kdump", "vmcore.kdump");
}

#[test]
fn linux_6_12_qemu_elf_threads_symbols_backtrace() {
    check_dump("linux-6.12", "qemu-vmcoreinfo", "vmcore.elf");
}

#[test]
fn linux_6_12_kdump_threads_symbols_backtrace() {
    check_dump("linux-6.12", "kdump", "vmcore.kdump");
}

/// The other eight fixture dumps: every format kpeek reads is served.
#[test]
fn every_other_fixture_dump_is_served_the_same_way() {
    for fixture in ["linux-6.1", "linux-6.12"] {
        for (boot, file) in [
            ("qemu-vmcoreinfo", "vmcore-paging.elf"),
            ("qemu-vmcoreinfo", "vmcore.kdump-zlib.flat"),
            ("qemu-plain", "vmcore.elf"),
            ("kdump", "vmcore.kdump.flat"),
        ] {
            check_dump(fixture, boot, file);
        }
    }
}

/// `$body` with its checksum.

#[test]
fn bad_clients_never_stop_the_server() {
    let (_fx, vmlinux, core) = dump("linux-6.1", "qemu-vmcoreinfo", "vmcore.elf");
    let mut server = Server::start(&vmlinux, &core);

    // A client that connects and says nothing stays connected throughout.
    let idle = server.connect();

    // Garbage bytes.
    let mut s = server.connect();
    let _ = s.write_all(b"hello\x00\xff\x03$zz#00-+}}}*\n\r$$$#");
    drop(s);

    // A packet cut off mid-way, then the client leaves.
    let mut s = server.connect();
    let _ = s.write_all(b"$m ffffffff81000000,1");
    drop(s);

    // A complete command, then the client leaves without reading the answer.
    let mut s = server.connect();
    let _ = s.write_all(&common::rsp_packet("qSupported:multiprocess+"));
    let _ = s.write_all(&common::rsp_packet("m0,4000"));
    drop(s);

    // A raw memory write is refused with an error reply; the session goes on.
    let mut s = server.connect();
    s.write_all(&common::rsp_packet("M0,1:00")).expect("send M");
    let r = common::rsp_reply(&mut s);
    assert!(r.starts_with('E'), "M answered {r:?}");
    s.write_all(b"+").expect("ack");
    s.write_all(&common::rsp_packet("m0,8")).expect("send m");
    let r = common::rsp_reply(&mut s);
    assert!(r.starts_with('E'), "unreadable memory answered {r:?}");
    s.write_all(b"+").expect("ack");
    s.write_all(&common::rsp_packet("qOffsets"))
        .expect("send qOffsets");
    let r = common::rsp_reply(&mut s);
    assert!(r.starts_with("TextSeg="), "qOffsets answered {r:?}");
    drop(s);

    // `set var` through GDB: refused, and the same session still reads.
    let out = gdb(
        &vmlinux,
        &server,
        &[
            "set var init_task.comm[0] = 65",
            "p init_task.comm",
            "p *(long *)0",
        ],
    );
    assert!(out.contains("Cannot access memory"), "{out}");
    assert!(out.contains("= \"swapper/0\\000"), "{out}");

    // And a following session is served normally.
    let out = gdb(&vmlinux, &server, &["p init_task.comm"]);
    assert!(out.contains("= \"swapper/0\\000"), "{out}");
    assert!(server.alive(), "the server survived");
    drop(idle);
}

#[test]
fn kernel_gdb_scripts_lx_ps_and_per_cpu() {
    let (fx, vmlinux, core) = dump("linux-6.12", "qemu-vmcoreinfo", "vmcore.elf");
    let script = fx.kernel_file("gdb/vmlinux-gdb.py");
    let server = Server::start(&vmlinux, &core);
    let source = format!("source {}", script.display());

    // With qOffsets alone: lx-ps is exactly `kpeek ps --style lx`.
    let t = Instant::now();
    let out = gdb(
        &vmlinux,
        &server,
        &[&source, "lx-ps", "p $lx_task_by_pid(1)->comm"],
    );
    eprintln!("lx-ps over kpeek serve took {:?}", t.elapsed());
    assert!(
        out.contains("= \"init\", '\\000'"),
        "$lx_task_by_pid(1)->comm:\n{out}"
    );
    let (ok, want, err) = run(common::kpeek_command()
        .args(["ps", "--style", "lx", "--vmlinux"])
        .arg(&vmlinux)
        .arg("--core")
        .arg(&core));
    assert!(ok, "{err}");
    let have: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("TASK"))
        .filter(|l| l.starts_with("0x") || l.contains("TASK"))
        .collect();
    let want: Vec<&str> = want.lines().collect();
    assert!(want.len() > 300, "{want:?}");
    let have: Vec<&str> = have.into_iter().filter(|l| !l.starts_with("$")).collect();
    assert_eq!(have, want, "lx-ps through kpeek serve:\n{out}");

    // kpeek's own GDB extension on the same server: the same listing.
    let kpeek_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts/kpeek.py");
    let mut c = Command::new(common::require_tool("gdb"));
    c.env("KPEEK", env!("CARGO_BIN_EXE_kpeek")).args([
        "-nx",
        "-batch",
        "-ex",
        "set pagination off",
        "-ex",
    ]);
    c.arg(format!("file {}", vmlinux.display()));
    for cmd in [
        format!("target remote {}", server.addr()),
        format!("source {}", kpeek_py.display()),
        "lx-ps".into(),
    ] {
        c.arg("-ex").arg(cmd);
    }
    let (_, mine, err) = run(&mut c);
    let mine: Vec<&str> = mine
        .lines()
        .skip_while(|l| !l.contains("TASK"))
        .filter(|l| l.starts_with("0x") || l.contains("TASK"))
        .collect();
    assert_eq!(mine, want, "kpeek.py lx-ps through kpeek serve:\n{err}");

    // Per-CPU variables need .data..percpu left at 0: the add-symbol-file
    // line kpeek prints. Thread 2 is CPU 1, as on QEMU.
    let mut c = Command::new(common::require_tool("gdb"));
    c.args(["-nx", "-batch", "-ex"]).arg(format!(
        "add-symbol-file {} -o {:#x} -s .data..percpu 0",
        vmlinux.display(),
        fx.boot("qemu-vmcoreinfo").kaslr_offset()
    ));
    for cmd in [
        format!("target remote {}", server.addr()),
        source,
        "thread 2".into(),
        "p $lx_current().comm".into(),
        "p $lx_per_cpu(runqueues).cpu".into(),
    ] {
        c.arg("-ex").arg(cmd);
    }
    let (_, out, err) = run(&mut c);
    let out = format!("{out}{err}");
    // CPU 1's current task as the kernel's own $lx_current() finds it
    // (GDB reading the per-CPU current_task) is the one kpeek's runqueue
    // walk names, and one the guest showed running (R), or CPU 1's idle task.
    let (ok, cpus, err) = run(common::kpeek_command()
        .args(["cpus", "--format", "json", "--vmlinux"])
        .arg(&vmlinux)
        .arg("--core")
        .arg(&core));
    assert!(ok, "{err}");
    let cpus: serde_json::Value = serde_json::from_str(&cpus).expect("json");
    let want = cpus["cpus"][1]["comm"]
        .as_str()
        .expect("CPU 1's comm")
        .to_owned();
    let truth = fx.boot("qemu-vmcoreinfo").truth();
    assert!(
        want == "swapper/1"
            || truth
                .tasks
                .iter()
                .any(|t| t.comm == want && t.state() == 'R'),
        "CPU 1 runs {want}"
    );
    assert!(out.contains(&format!("= \"{want}\\000")), "{want}: {out}");
    assert!(out.contains("= 1\n"), "runqueues of CPU 1:\n{out}");
}

#[test]
fn thread_apply_all_bt_covers_every_task() {
    let (_fx, vmlinux, core) = dump("linux-6.12", "kdump", "vmcore.kdump");
    let server = Server::start(&vmlinux, &core);
    let t = Instant::now();
    let out = gdb(&vmlinux, &server, &["thread apply all bt"]);
    let took = t.elapsed();
    let threads = out.lines().filter(|l| l.starts_with("Thread ")).count();
    eprintln!("thread apply all bt: {threads} threads in {took:?}");
    assert!(threads > 300, "{out}");
    // Every sleeping task unwinds from the scheduler.
    let in_scheduler = out
        .lines()
        .filter(|l| l.starts_with("#1 ") && l.contains("__schedule"))
        .count();
    assert!(in_scheduler > 250, "{in_scheduler} of {threads}");
}

#[test]
fn refuses_a_network_address_without_allow_remote() {
    let (ok, _, err) = run(common::kpeek_command().args([
        "serve",
        "--vmlinux",
        "/nonexistent",
        "--core",
        "/nonexistent",
        "--listen",
        "0.0.0.0:0",
    ]));
    assert!(!ok);
    assert!(err.contains("--allow-remote"), "{err}");
}

#[test]
fn parsers_of_gdb_output() {
    let t = parse_info_threads(
        "* 1    Thread 1.8388608 (CPU 0: 59 kpw-spin)      0x0000000000401a39 in ?? ()\n  \
         4    Thread 1.1 (1 init)                        0xffffffff97685826 in context_switch (rf=0x1) at a.c:1\n",
    );
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].num, t[0].tid, t[0].label.as_str()),
        (1, 8388608, "CPU 0: 59 kpw-spin")
    );
    assert_eq!((t[1].num, t[1].tid, t[1].label.as_str()), (4, 1, "1 init"));
    let f = bt_functions(
        "#0  0xffffffff97685826 in context_switch (rf=0x1) at a.c:1\n#1  __schedule (m=0) at b.c:2\n",
    );
    assert_eq!(f, ["context_switch", "__schedule"]);
    assert_eq!(
        proc_stack_functions("[<0>] __do_sys_pause+0x29/0x33\n[<0>] do_syscall_64+0x4e/0xa4\n"),
        ["__do_sys_pause", "do_syscall_64"]
    );
}

/// Between `@@NAME\n` and the next `@@`.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out
        .find(&format!("@@{name}\n"))
        .unwrap_or_else(|| panic!("no @@{name} in:\n{out}"))
        + name.len()
        + 3;
    let end = out[start..].find("@@").map_or(out.len(), |e| start + e);
    &out[start..end]
}

/// kpeek.py's lx-dmesg, lx-lsmod, lx-version, lx-cmdline, lx-cpus and
/// $lx_current/$lx_task_by_pid print what the kernel's own scripts print,
/// in one GDB session on a served kdump of each kernel.
#[test]
fn kpeek_py_lx_commands_equal_the_kernels_own() {
    for fixture in ["linux-6.1", "linux-6.12"] {
        let (fx, vmlinux, core) = dump(fixture, "kdump", "vmcore.kdump");
        let server = Server::start(&vmlinux, &core);
        let kpeek_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts/kpeek.py");
        let commands = [
            "lx-dmesg",
            "lx-lsmod",
            "lx-version",
            "lx-cmdline",
            "lx-cpus",
            "p $lx_current(1).comm",
            "p $lx_task_by_pid(1).comm",
        ];
        let mut script = vec![
            // Per-CPU variables (for the kernel's $lx_current) need
            // .data..percpu left at 0: the line kpeek serve prints.
            format!(
                "add-symbol-file {} -o {:#x} -s .data..percpu 0",
                vmlinux.display(),
                fx.boot("kdump").kaslr_offset()
            ),
            format!("target remote {}", server.addr()),
            format!("source {}", fx.kernel_file("gdb/vmlinux-gdb.py").display()),
        ];
        for (i, c) in commands.iter().enumerate() {
            script.push(format!("echo @@K{i}\\n"));
            script.push((*c).to_owned());
        }
        script.push(format!("source {}", kpeek_py.display()));
        for (i, c) in commands.iter().enumerate() {
            script.push(format!("echo @@P{i}\\n"));
            // The kernel's functions stay registered; kpeek's are $kpeek_*.
            script.push(c.replace("$lx_", "$kpeek_"));
        }
        script.push("echo @@END\\n".to_owned());
        let mut c = Command::new(common::require_tool("gdb"));
        c.env("KPEEK", env!("CARGO_BIN_EXE_kpeek")).args([
            "-nx",
            "-batch",
            "-ex",
            "set pagination off",
        ]);
        for s in &script {
            c.arg("-ex").arg(s);
        }
        let (_, out, err) = run(&mut c);
        let out = format!("{out}{err}");
        for (i, cmd) in commands.iter().enumerate() {
            let theirs = section(&out, &format!("K{i}"));
            let mine = section(&out, &format!("P{i}"));
            // `print` numbers its results: compare what follows ` = `.
            let strip = |s: &str| match s.strip_prefix('$') {
                Some(p) => p
                    .split_once(" = ")
                    .map_or(s.to_owned(), |(_, v)| v.to_owned()),
                None => s.to_owned(),
            };
            assert_eq!(strip(mine), strip(theirs), "{fixture}: {cmd}:\n{out}");
            assert!(
                !theirs.trim().is_empty() && !theirs.contains("Python Exception"),
                "{fixture}: the kernel's {cmd} printed {theirs:?}"
            );
        }
        assert!(
            section(&out, "K0").lines().count() > 150,
            "{fixture}: lx-dmesg"
        );
        assert!(section(&out, "K1").contains("kpeek_fixture"), "{fixture}");
        assert!(section(&out, "K6").contains("\"init\""), "{fixture}");
    }
}

/// `kpeek serve --core` with no vmlinux (the dump's kallsyms and BTF),
/// read by a GDB with no symbols, as the server's instructions say: the
/// threads are `kpeek ps --threads` (with the vmlinux) and the CPUs, a
/// sleeping task's registers stop it in `__schedule` and memory at a
/// symbol's run-time address holds what it should, both by the guest's own
/// /proc/kallsyms and /proc/version. One dump with VMCOREINFO and one
/// without (kallsyms found by shape) per kernel.
#[test]
fn served_without_a_vmlinux_gdb_sees_threads_registers_and_memory() {
    for (fixture, boot, file) in [
        ("linux-6.1", "kdump", "vmcore.kdump"),
        ("linux-6.1", "qemu-plain", "vmcore.elf"),
        ("linux-6.12", "kdump", "vmcore.kdump"),
        ("linux-6.12", "qemu-plain", "vmcore.elf"),
    ] {
        let (fx, vmlinux, core) = dump(fixture, boot, file);
        let truth = fx.boot(boot).truth();
        let mut printed = Vec::new();
        let server = Server::start_with(None, &core, &mut printed);
        let printed = printed.join("\n");
        assert!(
            printed.contains(&format!("gdb -ex 'target remote {}'", server.addr())),
            "{fixture} {boot}: the instructions:\n{printed}"
        );
        assert!(!printed.contains(&vmlinux.display().to_string()));
        let kallsyms = &truth.files["/proc/kallsyms"];
        let banner = truth.kallsyms("linux_banner").expect("linux_banner");
        let alpha = truth
            .tasks
            .iter()
            .find(|t| t.comm == "kpw-alpha")
            .expect("kpw-alpha in the truth");
        let out = gdb_bare(
            &server,
            &[
                "info threads",
                "echo @@BANNER\\n",
                &format!("x/s {banner:#x}"),
                "echo @@SYM\\n",
                "monitor sym linux_banner init_task",
                "echo @@END\\n",
            ],
        );
        let threads = parse_info_threads(&out);
        let cpus = threads.iter().filter(|t| t.tid >= CPU_TID_BASE).count();
        assert_eq!(cpus, 2, "{fixture} {boot}:\n{out}");
        assert_threads_are_tasks(
            &threads,
            &kpeek_ps_tasks(&vmlinux, &core),
            &format!("{fixture} {boot}: info threads"),
        );

        // The banner, at its run-time address.
        let version = truth.files["/proc/version"].trim_end();
        let x = between(&out, "@@BANNER\n", "@@SYM");
        assert!(
            x.contains(&format!("\"{version}\\n\"")),
            "{fixture} {boot}: x/s linux_banner gave {x:?}, the guest's /proc/version is {version:?}"
        );
        // (GDB prints a monitor command's output on stderr.)
        let sym = &out;
        assert!(
            sym.contains(&format!("{banner:#018x} linux_banner")),
            "{fixture} {boot}: monitor sym:\n{sym}"
        );
        let init_task = truth.kallsyms("init_task").expect("init_task");
        assert!(
            sym.contains(&format!("{init_task:#018x} init_task")),
            "{fixture} {boot}: monitor sym:\n{sym}"
        );

        // kpw-alpha sleeps: its pc is in __schedule, by /proc/kallsyms.
        let num = threads
            .iter()
            .find(|t| t.label == format!("{} kpw-alpha", alpha.tid))
            .map(|t| t.num)
            .expect("kpw-alpha is a thread");
        let out = gdb_bare(&server, &[&format!("thread {num}"), "p/x $pc", "p/x $sp"]);
        let pc = out
            .lines()
            .filter_map(|l| l.split(" = 0x").nth(1))
            .map(|h| u64::from_str_radix(h.trim(), 16).expect("hex"))
            .collect::<Vec<_>>();
        assert_eq!(pc.len(), 2, "{out}");
        let names = functions_at(kallsyms, pc[0]);
        assert!(
            names.iter().any(|n| n == "__schedule"),
            "{fixture} {boot}: kpw-alpha's pc {:#x} is in {names:?}",
            pc[0]
        );
        assert!(pc[1] >> 47 != 0, "a kernel stack pointer: {:#x}", pc[1]);

        // kpeek.py in a GDB with no file: lx-pahole reads the kernel's own
        // BTF through GDB, and prints what real pahole prints from the
        // vmlinux's .BTF (once per kernel: the first command finds kallsyms).
        if boot == "kdump" {
            let kpeek_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts/kpeek.py");
            let mut c = Command::new(common::require_tool("gdb"));
            c.env("KPEEK", env!("CARGO_BIN_EXE_kpeek"))
                .args(["-nx", "-batch"]);
            for cmd in [
                format!("target remote {}", server.addr()),
                format!("source {}", kpeek_py.display()),
                "echo @@PAHOLE\\n".to_owned(),
                "lx-pahole task_struct,list_head".to_owned(),
                "echo @@END\\n".to_owned(),
            ] {
                c.arg("-ex").arg(cmd);
            }
            let (_, out, err) = run(&mut c);
            let mine = between(&out, "@@PAHOLE\n", "@@END");
            let want = Command::new(common::require_tool("pahole"))
                .args(["-F", "btf", "-C", "task_struct,list_head"])
                .arg(&vmlinux)
                .output()
                .expect("pahole runs");
            let want = String::from_utf8_lossy(&want.stdout);
            assert!(want.contains("struct task_struct {"), "pahole: {want}");
            assert_eq!(
                mine, want,
                "{fixture}: lx-pahole with no vmlinux vs pahole -F btf:\n{err}"
            );
        }
    }
}

/// The text symbols of /proc/kallsyms that `addr` is in (those at the
/// highest address at or below it).
fn functions_at(kallsyms: &str, addr: u64) -> Vec<String> {
    let text: Vec<(u64, &str)> = kallsyms
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let a = u64::from_str_radix(f.next()?, 16).ok()?;
            let kind = f.next()?;
            let name = f.next()?;
            (matches!(kind, "t" | "T") && f.next().is_none()).then_some((a, name))
        })
        .filter(|(a, _)| *a <= addr)
        .collect();
    let best = text.iter().map(|(a, _)| *a).max();
    text.iter()
        .filter(|(a, _)| Some(*a) == best)
        .map(|(_, n)| (*n).to_owned())
        .collect()
}

/// The text between two marker lines of GDB's output.
fn between(out: &str, from: &str, to: &str) -> String {
    out.split(from)
        .nth(1)
        .and_then(|r| r.split(to).next())
        .unwrap_or("")
        .to_owned()
}

/// Drives a program through a pseudo-terminal (python3's pty module), as a
/// person at a terminal would: waits for GDB's prompt, sends each command,
/// collects what it printed up to the next prompt, then quits. Prints JSON:
/// `{"prompt": seconds to the first prompt, "outputs": [...]}`.
const PTY_DRIVER: &str = r#"
import json, os, pty, select, sys, time
argv, commands, timeout = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb"
    os.execvp(argv[0], argv)
buf = b""
def until(marker, deadline):
    global buf
    while marker not in buf:
        left = deadline - time.time()
        if left <= 0:
            sys.exit("timeout waiting for %r after: %r" % (marker, buf[-3000:]))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                sys.exit("the program ended; it printed: %r" % buf[-3000:])
            buf += data
    i = buf.index(marker) + len(marker)
    out, buf = buf[:i], buf[i:]
    return out.decode("utf-8", "replace")
start = time.time()
banner = until(b"(gdb) ", start + timeout)
prompt = time.time() - start
outputs = []
for c in commands:
    os.write(fd, c.encode() + b"\n")
    outputs.append(until(b"(gdb) ", time.time() + timeout))
os.write(fd, b"quit\n")
time.sleep(0.5)
try:
    os.write(fd, b"y\n")
except OSError:
    pass
end = time.time() + 20
while time.time() < end:
    done, _ = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    try:
        select.select([fd], [], [], 0.2) and os.read(fd, 65536)
    except OSError:
        pass
else:
    os.kill(pid, 9)
    sys.exit("did not quit")
print(json.dumps({"prompt": prompt, "banner": banner, "outputs": outputs}))
"#;

/// `kpeek gdb --core DUMP --vmlinux V` at a terminal: a GDB prompt within a
/// few seconds, where `info threads` lists exactly `kpeek ps --threads`
/// (plus the CPUs) and kpeek.py's `lx-ps` (the copy built into the binary)
/// is exactly `kpeek ps --style lx`. Then the same without --vmlinux.
#[test]
fn kpeek_gdb_at_a_terminal_reaches_a_prompt_with_threads_and_lx_ps() {
    let (_fx, vmlinux, core) = dump("linux-6.1", "kdump", "vmcore.kdump");
    let (ok, lx_ps, err) = run(Command::new(env!("CARGO_BIN_EXE_kpeek"))
        .args(["ps", "--style", "lx", "--vmlinux"])
        .arg(&vmlinux)
        .arg("--core")
        .arg(&core));
    assert!(ok, "{err}");
    let tasks = kpeek_ps_tasks(&vmlinux, &core);
    for with_vmlinux in [true, false] {
        let mut argv = vec![
            env!("CARGO_BIN_EXE_kpeek").to_owned(),
            "gdb".into(),
            "--gdb".into(),
            common::require_tool("gdb").display().to_string(),
            "--core".into(),
            core.display().to_string(),
        ];
        if with_vmlinux {
            argv.extend(["--vmlinux".into(), vmlinux.display().to_string()]);
        }
        argv.extend(
            [
                "--no-debuginfod",
                "--",
                "-nx",
                "-iex",
                "set pagination off",
                "-iex",
                "set width 0",
                "-iex",
                "set style enabled off",
            ]
            .map(String::from),
        );
        let commands = ["info threads", "lx-ps"];
        let (ok, out, err) = run(Command::new("python3")
            .arg("-c")
            .arg(PTY_DRIVER)
            .arg(serde_json::to_string(&argv).expect("json"))
            .arg(serde_json::to_string(&commands).expect("json"))
            .arg("60"));
        assert!(ok, "the pty driver failed: {err}\n{out}");
        let report: serde_json::Value = serde_json::from_str(out.trim()).expect("driver JSON");
        let prompt = report["prompt"].as_f64().expect("prompt");
        eprintln!("kpeek gdb (vmlinux: {with_vmlinux}): a GDB prompt after {prompt:.2}s");
        assert!(prompt < 30.0, "the prompt took {prompt}s");
        let outputs: Vec<String> = report["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .map(|o| o.as_str().expect("text").replace("\r\n", "\n"))
            .collect();
        let banner = report["banner"].as_str().unwrap_or("");
        assert!(
            !banner.contains("Python Exception") && !banner.contains("Error"),
            "{banner}"
        );

        let threads = parse_info_threads(&outputs[0]);
        assert_eq!(threads.len(), tasks.len() + 2, "{}", outputs[0]);
        assert_threads_are_tasks(&threads, &tasks, "info threads is kpeek ps --threads");

        let have: Vec<&str> = outputs[1]
            .lines()
            .skip_while(|l| !l.contains("TASK"))
            .filter(|l| l.starts_with("0x") || l.contains("TASK"))
            .collect();
        let want: Vec<&str> = lx_ps.lines().collect();
        assert!(want.len() > 50, "{lx_ps}");
        assert_eq!(have, want, "lx-ps in kpeek gdb:\n{}", outputs[1]);
    }
}

/// `kpeek gdb-script` prints the kpeek.py built into the binary, which is
/// the repository's; `--install DIR` writes it there.
#[test]
fn gdb_script_is_built_in() {
    let repo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb-scripts/kpeek.py"))
            .expect("kpeek.py");
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_kpeek")).arg("gdb-script"));
    assert!(ok, "{err}");
    assert_eq!(out, repo);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_kpeek"))
        .args(["gdb-script", "--install"])
        .arg(dir.path()));
    assert!(ok, "{err}");
    let path = dir.path().join("kpeek.py");
    assert_eq!(out.trim(), path.display().to_string());
    assert_eq!(std::fs::read_to_string(path).expect("installed"), repo);
}

/// `kpeek serve --qemu`: a live KASLR guest behind kpeek. `info threads`
/// equals `monitor ps -T` at the same stop and holds every task of the
/// guest's truth; a sleeping task's `bt` is its /proc/PID/stack; a
/// breakpoint passes through to QEMU and stops in the task that hit it
/// (a shell loop's `sleep`, added to the guest for this), which GDB then
/// marks current; Ctrl-C (SIGINT to GDB) stops the running guest again;
/// writes are refused; after GDB leaves the guest runs and the next GDB
/// is served.
#[test]
fn serve_qemu_shows_a_live_guests_tasks_and_passes_breakpoints_and_ctrl_c() {
    use common::guest::{initrd_with, Guest, Setup};
    for fixture in Fixture::all() {
        let name = fixture.name.clone();
        let dir =
            std::env::temp_dir().join(format!("kpeek-serve-qemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let hook = b"#!/bin/sh\nwhile :; do sleep 1; done\n".to_vec();
        let setup = Setup {
            initrd: Some(initrd_with(
                &fixture,
                &dir,
                &[("/test/after-truth".to_owned(), 0o755, hook)],
            )),
            ..Setup::default()
        };
        let guest = Guest::boot_with(&fixture, "", &setup);
        let truth = guest.truth();
        let vmlinux = fixture.vmlinux();
        let qemu = format!("127.0.0.1:{}", guest.port);
        let server = Server::start_on(
            Some(&vmlinux),
            &["--qemu".as_ref(), qemu.as_ref()],
            &mut Vec::new(),
        );

        // One stop: the threads, kpeek's own listing, a refused write.
        let out = gdb(
            &vmlinux,
            &server,
            &[
                "info threads",
                // kpw-spin runs in user space on a CPU: its code reads
                // through that vCPU's page tables.
                "python exec(\"for th in gdb.selected_inferior().threads():\\n  if 'kpw-spin, on CPU' in gdb.execute('info threads %d' % th.num, to_string=True):\\n    th.switch()\\n    print('@@SPIN ' + gdb.execute('x/4xb $pc', to_string=True))\\n    break\")",
                "monitor ps -T",
                "set var *(char *)&linux_banner = 0",
                "p linux_banner",
            ],
        );
        let threads = parse_info_threads(&out);
        // (GDB prints the monitor's output on stderr: the rows, wherever they are.)
        let ps: Vec<(i64, String)> = out
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.trim_start_matches('>').split_whitespace().collect();
                if cols.len() < 10 || !cols[4].starts_with("0x") {
                    return None;
                }
                let comm = cols.last()?.trim_start_matches('[').trim_end_matches(']');
                Some((cols[1].parse().ok()?, comm.to_owned()))
            })
            .collect();
        assert!(ps.len() > 300, "{name}: monitor ps -T:\n{out}");
        let labels: BTreeMap<i64, String> = threads
            .iter()
            .filter(|t| t.tid < CPU_TID_BASE)
            .map(|t| {
                let label = t.label.split(", on CPU").next().unwrap_or("");
                let (pid, comm) = label.split_once(' ').unwrap_or(("", ""));
                (
                    pid.parse().unwrap_or(-1),
                    comm.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                )
            })
            .filter(|(pid, _)| *pid > 0)
            .collect();
        let listed: BTreeMap<i64, String> = ps.into_iter().filter(|(pid, _)| *pid > 0).collect();
        assert_eq!(labels, listed, "{name}: info threads vs monitor ps -T");
        for want in &truth.tasks {
            let got = labels
                .get(&want.tid)
                .unwrap_or_else(|| panic!("{name}: {} {} is not a thread", want.tid, want.comm));
            assert!(
                want.comm.starts_with(got.as_str()),
                "{name}: {got} vs {}",
                want.comm
            );
        }
        let spin = out.split("@@SPIN ").nth(1).unwrap_or("");
        assert!(
            spin.starts_with("0x40") && !spin.lines().next().unwrap_or("").contains("Cannot"),
            "{name}: kpw-spin's user code through its vCPU:\n{out}"
        );
        assert!(
            out.contains("Linux version "),
            "{name}: the banner is intact:\n{out}"
        );
        assert!(
            out.contains("Cannot access memory"),
            "{name}: the write was refused:\n{out}"
        );

        // kpw-alpha sleeps in pause(): its bt is its /proc/PID/stack.
        assert_alpha_bt(&name, &vmlinux, &server, &threads, &truth);

        // A breakpoint, then Ctrl-C: GDB runs the guest until told to stop.
        let log = dir.join("gdb.log");
        let mut child = Command::new(common::require_tool("gdb"))
            .args(["-nx", "-batch"])
            .arg(&vmlinux)
            .args(["-ex", &format!("target remote {}", server.addr())])
            .args(["-ex", "break do_nanosleep", "-ex", "continue"])
            .args([
                "-ex",
                "echo @@HIT\\n",
                "-ex",
                "info threads",
                "-ex",
                "echo @@END\\n",
            ])
            .args(["-ex", "delete", "-ex", "continue"])
            .args([
                "-ex",
                "echo @@INT\\n",
                "-ex",
                "info threads",
                "-ex",
                "echo @@END\\n",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("gdb");
        // GDB is in the second `continue` once it listed the threads at
        // the breakpoint (`Continuing.` goes to stderr in batch mode).
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + DEADLINE;
        while !read().contains("@@END") {
            assert!(
                Instant::now() < deadline,
                "{name}: no breakpoint hit:\n{}",
                read()
            );
            assert!(
                child.try_wait().ok().flatten().is_none(),
                "{name}: gdb ended:\n{}",
                read()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(3));
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        while child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "{name}: gdb did not stop:\n{}",
                read()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = read();
        assert!(
            out.contains("hit Breakpoint 1, do_nanosleep"),
            "{name}:\n{out}"
        );
        let current = |part: &str| {
            section(&out, part)
                .lines()
                .find(|l| l.starts_with('*'))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let hit = current("HIT");
        assert!(
            hit.contains(" sleep, on CPU"),
            "{name}: the sleeping process is the current thread: {hit}\n{out}"
        );
        assert!(out.contains("received signal SIGINT"), "{name}:\n{out}");
        assert!(
            parse_info_threads(section(&out, "INT")).len() > 300,
            "{name}: the threads after Ctrl-C:\n{out}"
        );
        assert!(guest.running(), "{name}: GDB left, the guest must run");
        // The next GDB is served.
        let again = gdb(&vmlinux, &server, &["info threads"]);
        assert!(parse_info_threads(&again).len() > 300, "{name}:\n{again}");
        assert!(
            guest.running(),
            "{name}: the guest runs after the second GDB"
        );
        // A client that leaves mid-packet, one that leaves while the guest
        // runs, one that sends a packet too long: the guest runs on, the
        // next GDB is served.
        {
            let mut s = server.connect();
            s.write_all(b"+$qSupported:multipro").expect("send");
        }
        {
            let mut s = server.connect();
            s.write_all(b"+$c#63").expect("send");
            std::thread::sleep(Duration::from_millis(500));
        }
        {
            // Longer than the PacketSize kpeek advertises (0x4000).
            let mut s = server.connect();
            let mut packet = b"+$".to_vec();
            packet.extend(std::iter::repeat_n(b'a', 0x8000));
            let _ = s.write_all(&packet);
        }
        std::thread::sleep(Duration::from_secs(1));
        let again = gdb(&vmlinux, &server, &["info threads"]);
        assert!(parse_info_threads(&again).len() > 300, "{name}:\n{again}");
        assert!(
            guest.running(),
            "{name}: the guest runs after broken clients"
        );
        // QEMU goes away: the next client ends the server, with a failure.
        let mut server = server;
        drop(guest);
        let _ = gdb(&vmlinux, &server, &["info threads"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the server outlived QEMU"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(!status.success(), "{name}: {status}");
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `monitor hung` on the hung-task panic kdump: the ABBA deadlock the
/// fixture module recorded, and every lock a task waits on by the
/// module's record, with the owner it names.
#[test]
fn monitor_hung_shows_the_modules_deadlock() {
    let (fx, vmlinux, core) = dump("linux-6.12", "hung-panic", "vmcore.kdump");
    let records = common::module_records(&fx.boot("hung-panic").truth());
    let server = Server::start(&vmlinux, &core);
    let out = gdb(&vmlinux, &server, &["monitor hung", "monitor info"]);
    assert!(out.contains("DEADLOCK: a cycle of 2 tasks"), "{out}");
    // `monitor info`'s hung line names the tasks the kernel's detector named.
    let console = std::fs::read_to_string(fx.boot("hung-panic").dir.join("console.log"))
        .expect("console.log");
    let named = common::detector_reports(&console);
    assert!(!named.is_empty());
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("hung: "))
        .unwrap_or_else(|| panic!("no hung line in monitor info:\n{out}"));
    for (pid, comm, _) in &named {
        assert!(line.contains(&format!("{comm}:{pid}")), "{line}");
    }
    for r in records.iter().filter(|r| r.holds && r.ty == "mutex") {
        assert!(
            out.contains(&format!("held by pid {} {}", r.pid, r.comm)),
            "{}: {out}",
            r.name
        );
    }
    for w in records.iter().filter(|r| !r.holds) {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("  pid {} D ", w.pid)))
            .unwrap_or_else(|| panic!("pid {} {} not listed:\n{out}", w.pid, w.comm));
        assert!(line.contains(&format!("{:#x}", w.addr)), "{line}");
        if let Some(h) = records.iter().find(|h| h.holds && h.addr == w.addr) {
            assert!(
                line.contains(&format!("owned by pid {} {}", h.pid, h.comm)),
                "{line}"
            );
        }
    }
}
