//! Hostile input, round two (issue 25): dumps damaged on purpose, generated
//! from the committed fixtures, each checked for what the issue found.
//!
//! - control bytes in every string kpeek prints (task names, module names,
//!   log lines, OSRELEASE): human output escapes them, on every command and
//!   style and through `kpeek serve`;
//! - a flattened stream of two million chunks opens in seconds;
//! - `kpeek serve` drops a packet longer than it advertises, and a client
//!   that sends nothing but garbage, without growing.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;
use kpeek::addr::VirtAddr;
use kpeek::kernel::{task_list, OpenOptions, Program};

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kpeek-hostile-{}-{name}", std::process::id()))
}

/// The physical address of `va`: through the dump's own page tables.
fn phys_of(prog: &Program, va: u64) -> Option<u64> {
    match prog.space.translate(VirtAddr(va)) {
        Ok(p) => Some(p.0),
        Err(_) => prog
            .space
            .walk(prog.located.layout.pgd, VirtAddr(va))
            .ok()
            .map(|p| p.0),
    }
}

/// Overwrite `bytes` at kernel virtual address `va` in an ELF dump's bytes.
fn poke(dump: &mut [u8], prog: &Program, va: u64, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        let phys = phys_of(prog, va + i as u64).expect("mapped");
        let off = common::elf_file_offset(dump, phys);
        dump[off] = *b;
    }
}

/// The strings an attacker would put in a task's comm (15 bytes at most):
/// a window title, a forged line, screen clearing, a one-byte CSI, bytes
/// that are not UTF-8, a line erase.
const PAYLOADS: &[&[u8]] = &[
    b"\x1b]0;owned\x07",
    b"a\nPID 1 fake\r",
    b"\x1b[2J\x1b[H",
    b"\x9b31m\xc2\x9b31m",
    b"x\xff\x7f\x08y",
    b"\r\x1b[K\x00",
];

/// Every byte a terminal would act on, other than a newline or a tab:
/// C0 controls, DEL, C1 controls (as UTF-8), and bytes that are not UTF-8.
fn raw_controls(out: &[u8]) -> Vec<String> {
    let text = match std::str::from_utf8(out) {
        Ok(t) => t,
        Err(e) => return vec![format!("not UTF-8 at byte {}", e.valid_up_to())],
    };
    text.lines()
        .filter(|l| l.chars().any(|c| c.is_control() && c != '\t'))
        .map(|l| format!("{l:?}"))
        .take(5)
        .collect()
}

struct Hostile {
    vmlinux: PathBuf,
    core: PathBuf,
    /// How many strings were damaged: comms, module names, log lines, OSRELEASE.
    strings: usize,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.core).ok();
    }
}

/// The 6.12 QEMU dump with VMCOREINFO, every task's comm, every module's
/// name, two log records and OSRELEASE holding control bytes.
fn control_bytes_dump() -> Hostile {
    let fixture = Fixture::load("linux-6.12");
    let vmlinux = fixture.vmlinux();
    let core = fixture.boot("qemu-vmcoreinfo").dir.join("vmcore.elf");
    let prog = Program::open(&vmlinux, &core, &OpenOptions::default()).expect("open");
    let mut dump = std::fs::read(&core).expect("dump");
    let mut strings = 0;

    let comm_off = prog
        .debug
        .member("task_struct", "comm")
        .expect("task_struct.comm")
        .offset;
    let list = task_list(&prog).expect("walk");
    for (i, t) in list.tasks.iter().enumerate() {
        let payload = PAYLOADS[i % PAYLOADS.len()];
        let mut comm = [0u8; 16];
        comm[..payload.len()].copy_from_slice(payload);
        poke(&mut dump, &prog, t.task.0 + comm_off, &comm);
        strings += 1;
    }
    let name_off = prog
        .debug
        .member("module", "name")
        .expect("module.name")
        .offset;
    let mods = kpeek::kernel::modules::for_each_module(&prog).expect("modules");
    for (i, m) in mods.modules.iter().enumerate() {
        let payload = PAYLOADS[(i + 1) % PAYLOADS.len()];
        let mut name = vec![0u8; payload.len() + 1];
        name[..payload.len()].copy_from_slice(payload);
        poke(&mut dump, &prog, m.module.0 + name_off, &name);
        strings += 1;
    }
    // Log lines and OSRELEASE: wherever their text is in the file.
    for (from, to) in [
        (&b"Command line: "[..], &b"Command\x1b[2J\x07: "[..]),
        (b"Memory: ", b"Mem\rry\n "),
        (b"OSRELEASE=6", b"OSRELEASE=\x1b"),
    ] {
        let mut at = 0;
        while let Some(i) = dump[at..].windows(from.len()).position(|w| w == from) {
            dump[at + i..at + i + to.len()].copy_from_slice(to);
            at += i + from.len();
            strings += 1;
        }
    }
    let file = scratch("control-bytes.elf");
    std::fs::write(&file, &dump).expect("write");
    Hostile {
        vmlinux,
        core: file,
        strings,
    }
}

fn kpeek(args: &[&str], h: &Hostile) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kpeek"))
        .args(args)
        .arg("--vmlinux")
        .arg(&h.vmlinux)
        .arg("--core")
        .arg(&h.core)
        .output()
        .expect("run kpeek")
}

#[test]
fn control_bytes_in_every_string_are_escaped_in_human_output() {
    let h = control_bytes_dump();
    assert!(h.strings > 100, "only {} strings damaged", h.strings);
    let commands: &[&[&str]] = &[
        &["ps"],
        &["ps", "--threads"],
        &["ps", "--tree"],
        &["ps", "--style", "lx"],
        &["threads"],
        &["cpus"],
        &["info"],
        &["bt", "--all", "--no-lines"],
        &["bt", "--all", "--style", "proc"],
        &["bt", "--cpus", "--no-lines"],
        &["dmesg"],
        &["dmesg", "--raw", "--caller"],
        &["dmesg", "--style", "lx"],
        &["lsmod"],
        &["lsmod", "--style", "proc"],
        &["lsmod", "--style", "lx"],
    ];
    let mut failures = Vec::new();
    let mut escaped = 0;
    for cmd in commands {
        let out = kpeek(cmd, &h);
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "kpeek {cmd:?}: {out:?}"
        );
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let bad = raw_controls(bytes);
            if !bad.is_empty() {
                failures.push(format!("kpeek {cmd:?} {stream}: {bad:?}"));
            }
        }
        escaped += String::from_utf8_lossy(&out.stdout)
            .matches("\\x1b")
            .count();
    }
    assert!(
        failures.is_empty(),
        "raw control bytes:\n{}",
        failures.join("\n")
    );
    // The damage is visible, escaped: the strings were read and printed.
    assert!(escaped > 50, "only {escaped} escaped ESCs in the outputs");
    eprintln!(
        "{} damaged strings, {} commands, {escaped} escaped ESCs",
        h.strings,
        commands.len()
    );
}

/// `kpeek serve` with the same dump: the thread names GDB shows in
/// `info threads` (`qThreadExtraInfo`) and `monitor ps`/`threads`/`info`.
#[test]
fn control_bytes_are_escaped_through_serve() {
    let h = control_bytes_dump();
    let mut server = Server::start(&h);
    let mut s = server.connect();
    let mut threads = Vec::new();
    let mut q = "qfThreadInfo";
    loop {
        let r = exchange(&mut s, q);
        if !r.starts_with('m') {
            break;
        }
        threads.extend(r[1..].split(',').map(str::to_owned));
        q = "qsThreadInfo";
    }
    assert!(threads.len() > 50, "{} threads", threads.len());
    let mut bad = Vec::new();
    let mut escaped = 0;
    for t in &threads {
        let r = exchange(&mut s, &format!("qThreadExtraInfo,{t}"));
        let text = unhex(&r);
        escaped += String::from_utf8_lossy(&text).matches("\\x1b").count();
        bad.extend(raw_controls(&text));
    }
    for cmd in ["ps", "ps -T", "threads", "info"] {
        let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
        let mut text = Vec::new();
        let mut r = exchange(&mut s, &format!("qRcmd,{hex}"));
        // Console output comes as `O<hex>` packets, then `OK`.
        while let Some(o) = r.strip_prefix('O').filter(|_| r != "OK") {
            text.extend(unhex(o));
            s.write_all(b"+").ok();
            r = common::rsp_reply(&mut s);
        }
        escaped += String::from_utf8_lossy(&text).matches("\\x1b").count();
        bad.extend(
            raw_controls(&text)
                .into_iter()
                .map(|l| format!("{cmd}: {l}")),
        );
    }
    assert!(bad.is_empty(), "raw control bytes through serve: {bad:?}");
    assert!(escaped > 50, "only {escaped} escaped ESCs through serve");
    assert!(server.alive());
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn exchange(s: &mut TcpStream, body: &str) -> String {
    s.write_all(&common::rsp_packet(body)).expect("send");
    let r = common::rsp_reply(s);
    s.write_all(b"+").expect("ack");
    r
}

/// A `kpeek serve` of a dump, its stderr kept.
struct Server {
    child: Child,
    port: u16,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(h: &Hostile) -> Server {
        Server::start_files(&h.vmlinux, &h.core)
    }

    fn start_files(vmlinux: &Path, core: &Path) -> Server {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_kpeek"))
            .args(["serve", "--listen", "127.0.0.1:0", "--vmlinux"])
            .arg(vmlinux)
            .arg("--core")
            .arg(core)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kpeek serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    // Keep draining.
                }
            }
        });
        let (etx, erx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = etx.send(line);
            }
        });
        let start = Instant::now();
        let port = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120).saturating_sub(start.elapsed()))
                .expect("kpeek serve prints its address");
            if let Some(rest) = line.split("target remote 127.0.0.1:").nth(1) {
                let p: String = rest.chars().take_while(char::is_ascii_digit).collect();
                break p.parse().expect("port");
            }
        };
        Server {
            child,
            port,
            stderr: erx,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(300))).ok();
        s
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The largest resident set the server has had, in KiB.
    fn peak_rss_kb(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// stderr lines so far, waiting up to `wait` for one containing `want`.
    fn stderr_until(&self, want: &str, wait: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut lines = Vec::new();
        while let Ok(l) = self
            .stderr
            .recv_timeout(wait.saturating_sub(start.elapsed()))
        {
            let done = l.contains(want);
            lines.push(l);
            if done {
                break;
            }
        }
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `bytes` until the server closes the connection; how many it took.
fn flood(s: &mut TcpStream, mut bytes: impl FnMut(usize) -> Vec<u8>, limit: usize) -> usize {
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    let mut sent = 0;
    while sent < limit {
        match s.write(&bytes(sent)) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

/// A `$` and then 256 MiB with no `#`; a valid packet of 64 MiB; a client
/// sending endless bytes that are no packet: each connection is dropped
/// with a message on stderr, the server stays small and serves the next.
#[test]
fn serve_drops_oversized_packets_and_garbage_without_growing() {
    let fixture = Fixture::load("linux-6.1");
    let core = fixture.boot("kdump").dir.join("vmcore.kdump");
    let mut server = Server::start_files(&fixture.vmlinux(), &core);
    // A first session, to see the server's size once it has served.
    let mut s = server.connect();
    assert!(exchange(&mut s, "qSupported:multiprocess+").contains("PacketSize=4000"));
    drop(s);
    let base = server.peak_rss_kb();

    const CHUNK: usize = 1 << 20;
    let mut s = server.connect();
    let sent = flood(
        &mut s,
        |n| {
            let mut v = vec![b'a'; CHUNK];
            if n == 0 {
                v[0] = b'$';
            }
            v
        },
        256 << 20,
    );
    assert!(sent < 256 << 20, "the server read all {sent} bytes");
    let lines = server.stderr_until("PacketSize=4000", Duration::from_secs(30));
    assert!(
        lines.iter().any(|l| l.contains("packet longer than")),
        "{lines:?}"
    );

    // A valid, checksummed packet of 64 MiB.
    let body = "m".repeat(64 << 20);
    let mut s = server.connect();
    let p = common::rsp_packet(&body);
    let sent = flood(&mut s, |n| p[n..(n + CHUNK).min(p.len())].to_vec(), p.len());
    assert!(sent < p.len(), "the server read the whole 64 MiB packet");
    let lines = server.stderr_until("PacketSize=4000", Duration::from_secs(30));
    assert!(
        lines.iter().any(|l| l.contains("packet longer than")),
        "{lines:?}"
    );

    // Garbage: never a `$`.
    let mut s = server.connect();
    let sent = flood(&mut s, |_| vec![b'z'; CHUNK], 64 << 20);
    assert!(sent < 64 << 20, "the server read {sent} bytes of garbage");
    let lines = server.stderr_until("not GDB packets", Duration::from_secs(30));
    assert!(
        lines.iter().any(|l| l.contains("not GDB packets")),
        "{lines:?}"
    );

    let peak = server.peak_rss_kb();
    assert!(
        peak < base + 16 * 1024,
        "the server grew from {base} KiB to {peak} KiB"
    );
    // And it still serves.
    let mut s = server.connect();
    assert!(exchange(&mut s, "qSupported:multiprocess+").contains("PacketSize=4000"));
    assert!(server.alive());
    eprintln!("serve: peak {peak} KiB, {base} KiB after the first session");
}

/// `kdump` as a flattened stream of at least `n` chunks: first one chunk of
/// garbage over the whole file (later chunks must win over it), then the
/// file's bytes in small chunks, every pair swapped (out of order), each
/// chunk overlapping the next by one byte.
fn chunked_stream(kdump: &[u8], n: usize) -> (Vec<u8>, usize) {
    let size = (kdump.len() / n).max(2);
    let mut out = b"makedumpfile\0\0\0\0".to_vec();
    out.extend_from_slice(&1i64.to_be_bytes());
    out.extend_from_slice(&1i64.to_be_bytes());
    out.resize(4096, 0);
    let mut chunk = |off: usize, data: &[u8]| {
        out.extend_from_slice(&(off as i64).to_be_bytes());
        out.extend_from_slice(&(data.len() as i64).to_be_bytes());
        out.extend_from_slice(data);
    };
    chunk(0, &vec![0x5a; kdump.len()]);
    let starts: Vec<usize> = (0..kdump.len()).step_by(size).collect();
    for pair in starts.chunks(2) {
        for &s in pair.iter().rev() {
            chunk(s, &kdump[s..(s + size + 1).min(kdump.len())]);
        }
    }
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    (out, 1 + starts.len())
}

/// Two million chunks open in seconds (121,000 took 35 s: every chunk
/// scanned the ranges before it), and read back as the kdump they came from.
#[test]
fn a_flattened_stream_of_two_million_chunks_opens_quickly() {
    let fixture = Fixture::load("linux-6.1");
    let vmlinux = fixture.vmlinux();
    let kdump_path = fixture.boot("kdump").dir.join("vmcore.kdump");
    let kdump = std::fs::read(&kdump_path).expect("kdump");
    let (stream, chunks) = chunked_stream(&kdump, 2_000_000);
    assert!(chunks >= 2_000_000, "{chunks} chunks");
    let file = scratch("two-million.flat");
    std::fs::write(&file, &stream).expect("write");
    // CPU time, not wall time: the machine may be busy with other builds.
    let run = |core: &Path| {
        let before = children_cpu();
        let out = Command::new(env!("CARGO_BIN_EXE_kpeek"))
            .args(["ps", "--vmlinux"])
            .arg(&vmlinux)
            .arg("--core")
            .arg(core)
            .output()
            .expect("run kpeek");
        (out, children_cpu() - before)
    };
    let (chunked, took) = run(&file);
    let (plain, plain_took) = run(&kdump_path);
    std::fs::remove_file(&file).ok();
    assert!(
        chunked.status.success(),
        "{}",
        String::from_utf8_lossy(&chunked.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&chunked.stdout),
        String::from_utf8_lossy(&plain.stdout),
        "the chunked stream reads back as the kdump"
    );
    // Quadratic was hours (35 s for 121,000 chunks); the debug build
    // needs about 10 s of CPU, mostly sorting (the release build, 0.3 s).
    assert!(
        took < plain_took + Duration::from_secs(60),
        "{chunks} chunks: ps took {took:?} (the kdump itself {plain_took:?})"
    );
    eprintln!(
        "{chunks} chunks, {} bytes of stream: ps in {took:?} of CPU (the kdump itself: {plain_took:?})",
        stream.len()
    );
}

/// User and system time of every child that has ended so far.
fn children_cpu() -> Duration {
    #[repr(C)]
    struct Rusage {
        utime: [i64; 2],
        stime: [i64; 2],
        rest: [i64; 14],
    }
    extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut r = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        rest: [0; 14],
    };
    // SAFETY: getrusage fills the struct it is given (RUSAGE_CHILDREN = -1).
    let rc = unsafe { getrusage(-1, &mut r) };
    assert_eq!(rc, 0, "getrusage");
    let t = |tv: [i64; 2]| Duration::from_secs(tv[0] as u64) + Duration::from_micros(tv[1] as u64);
    t(r.utime) + t(r.stime)
}

/// The 6.12 QEMU dump with VMCOREINFO, damaged by `damage` (given the
/// opened program and the file's bytes), written to a scratch file.
fn damaged_elf(name: &str, damage: impl FnOnce(&Program, &mut Vec<u8>)) -> Hostile {
    let fixture = Fixture::load("linux-6.12");
    let vmlinux = fixture.vmlinux();
    let core = fixture.boot("qemu-vmcoreinfo").dir.join("vmcore.elf");
    let prog = Program::open(&vmlinux, &core, &OpenOptions::default()).expect("open");
    let mut dump = std::fs::read(&core).expect("dump");
    damage(&prog, &mut dump);
    let file = scratch(name);
    std::fs::write(&file, &dump).expect("write");
    Hostile {
        vmlinux,
        core: file,
        strings: 0,
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `init_task.tasks.next` pointing at itself: a whole list of one task.
/// `ps` used to list the idle tasks alone with exit 0; `nr_threads` says
/// how many there are.
#[test]
fn a_self_linked_task_list_is_counted_against_nr_threads() {
    let h = damaged_elf("self-linked.elf", |prog, dump| {
        let init = prog.symbol("init_task").expect("init_task").0;
        let tasks = prog
            .debug
            .member("task_struct", "tasks")
            .expect("tasks")
            .offset;
        poke(dump, prog, init + tasks, &(init + tasks).to_le_bytes());
    });
    for cmd in [&["ps"][..], &["ps", "--style", "lx"], &["threads"]] {
        let out = kpeek(cmd, &h);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "kpeek {cmd:?}: {err}");
        assert!(err.contains("nr_threads"), "kpeek {cmd:?}: {err}");
    }
    // And `kpeek serve` says so, on stderr and in `monitor info`.
    let mut server = Server::start(&h);
    let lines = server.stderr_until("nr_threads", Duration::from_secs(5));
    assert!(
        lines.iter().any(|l| l.contains("nr_threads")),
        "serve: {lines:?}"
    );
    let mut s = server.connect();
    let hex: String = "info".bytes().map(|b| format!("{b:02x}")).collect();
    let mut text = Vec::new();
    let mut r = exchange(&mut s, &format!("qRcmd,{hex}"));
    while let Some(o) = r.strip_prefix('O').filter(|_| r != "OK") {
        text.extend(unhex(o));
        s.write_all(b"+").ok();
        r = common::rsp_reply(&mut s);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("nr_threads"), "monitor info:\n{text}");
    assert!(server.alive());
}

/// Two processes each other's parent: `ps --tree` used to drop both.
#[test]
fn a_loop_in_the_parent_links_is_shown_and_warned_about() {
    let mut pids = Vec::new();
    let h = damaged_elf("parent-loop.elf", |prog, dump| {
        let list = task_list(prog).expect("walk");
        let procs: Vec<_> = list
            .tasks
            .iter()
            .filter(|t| t.pid == t.tgid && !t.kthread && t.pid > 1)
            .take(2)
            .collect();
        assert_eq!(procs.len(), 2);
        let rp = prog
            .debug
            .member("task_struct", "real_parent")
            .expect("real_parent")
            .offset;
        poke(
            dump,
            prog,
            procs[0].task.0 + rp,
            &procs[1].task.0.to_le_bytes(),
        );
        poke(
            dump,
            prog,
            procs[1].task.0 + rp,
            &procs[0].task.0.to_le_bytes(),
        );
        pids = procs.iter().map(|t| t.pid).collect();
    });
    let out = kpeek(&["ps", "--tree"], &h);
    let err = stderr_of(&out);
    let tree = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("loop"), "{err}");
    for pid in &pids {
        assert!(
            tree.lines().any(|l| l.contains(&format!("─{pid} "))),
            "pid {pid} missing from the tree:\n{tree}"
        );
    }
}

/// A kdump whose sub-header puts the notes at an absurd offset: no CPU
/// registers. `info` says why; `bt --all` ends the running tasks' traces
/// at their zero pc instead of printing `_end+0x.../0x0` frames.
#[test]
fn a_kdump_with_unreadable_notes_says_so_and_prints_no_garbage_frames() {
    let fixture = Fixture::load("linux-6.1");
    let vmlinux = fixture.vmlinux();
    let mut kdump = std::fs::read(fixture.boot("kdump").dir.join("vmcore.kdump")).expect("kdump");
    // disk_dump_header.block_size at 428; the sub-header's offset_note at 48.
    let block = u32::from_le_bytes(kdump[428..432].try_into().expect("4")) as usize;
    kdump[block + 48..block + 56].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let h = Hostile {
        vmlinux,
        core: scratch("bad-notes.kdump"),
        strings: 0,
    };
    std::fs::write(&h.core, &kdump).expect("write");
    let info = kpeek(&["info"], &h);
    assert!(
        stderr_of(&info).contains("notes"),
        "info: {}",
        stderr_of(&info)
    );
    let bt = kpeek(&["bt", "--all", "--no-lines"], &h);
    let text = String::from_utf8_lossy(&bt.stdout);
    assert!(
        matches!(bt.status.code(), Some(0..=2)),
        "{}",
        stderr_of(&bt)
    );
    assert!(
        !text.contains("_end+"),
        "frames past the kernel's end:\n{}",
        text.lines()
            .filter(|l| l.contains("_end+"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(text.contains("is not kernel text"), "{text}");
}

/// A directory or a FIFO given as the dump: a clear refusal, at once.
#[test]
fn a_directory_or_a_fifo_is_refused_as_a_dump() {
    let dir = scratch("dir");
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = scratch("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    for (path, want) in [(&dir, "a directory"), (&fifo, "not a regular file")] {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kpeek"))
            .args(["info", "--core"])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(start.elapsed() < Duration::from_secs(20));
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
    std::fs::remove_dir(&dir).ok();
    std::fs::remove_file(&fifo).ok();
}

/// An ELF dump cut 256 KiB short: "256 KiB missing", not "0 MiB".
#[test]
fn a_small_truncation_is_reported_in_kib() {
    let h = damaged_elf("cut-256k.elf", |_, dump| {
        let len = dump.len() - (256 << 10);
        dump.truncate(len);
    });
    let out = kpeek(&["info"], &h);
    let err = stderr_of(&out);
    assert!(err.contains("256 KiB"), "{err}");
    assert!(!err.contains(" 0 MiB"), "{err}");
}

/// A kdump whose header gives a block size other than the 4 KiB page: it
/// used to be reported as "the dump has no VMCOREINFO".
#[test]
fn a_kdump_with_another_block_size_says_so() {
    let fixture = Fixture::load("linux-6.1");
    let mut kdump = std::fs::read(fixture.boot("kdump").dir.join("vmcore.kdump")).expect("kdump");
    let mut seen = 0;
    for bs in [512u32, 2048] {
        kdump[428..432].copy_from_slice(&bs.to_le_bytes());
        let h = Hostile {
            vmlinux: fixture.vmlinux(),
            core: scratch(&format!("block-{bs}.kdump")),
            strings: 0,
        };
        std::fs::write(&h.core, &kdump).expect("write");
        let out = kpeek(&["info"], &h);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("block size {bs}")), "{err}");
        assert!(!err.contains("no VMCOREINFO,"), "{err}");
        seen += 1;
    }
    assert_eq!(seen, 2);
}

/// VMCOREINFO that contradicts the dump: `PAGESIZE=0` ("0-byte pages") and
/// `pgtable_l5_enabled=1` on a 4-level kernel (every stack "not mapped",
/// exit 0). Each is refused with a warning and the proven value used.
#[test]
fn vmcoreinfo_that_contradicts_the_dump_is_refused() {
    let h = damaged_elf("contradicting-vmcoreinfo.elf", |_, dump| {
        for (from, to) in [
            (&b"PAGESIZE=4096"[..], &b"PAGESIZE=0000"[..]),
            (
                b"NUMBER(pgtable_l5_enabled)=0",
                b"NUMBER(pgtable_l5_enabled)=1",
            ),
        ] {
            let mut n = 0;
            let mut at = 0;
            while let Some(i) = dump[at..].windows(from.len()).position(|w| w == from) {
                dump[at + i..at + i + to.len()].copy_from_slice(to);
                at += i + from.len();
                n += 1;
            }
            assert!(n > 0, "{}", String::from_utf8_lossy(from));
        }
    });
    let info = kpeek(&["info"], &h);
    let err = stderr_of(&info);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(err.contains("PAGESIZE=0"), "{err}");
    assert!(err.contains("pgtable_l5_enabled=1"), "{err}");
    assert!(text.contains("4 levels, 4096-byte pages"), "{text}");
    let bt = kpeek(&["bt", "--all", "--no-lines"], &h);
    let text = String::from_utf8_lossy(&bt.stdout);
    assert!(
        !text.contains("not in the dump") && !text.contains("not mapped"),
        "stacks unreadable:\n{}",
        text.lines()
            .filter(|l| l.contains("not "))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A garbage `__per_cpu_offset[1]`: `ps` used to drop `[swapper/1]` and
/// the `>` marker of CPU 1's task without a word.
#[test]
fn a_garbage_per_cpu_offset_is_warned_about() {
    let h = damaged_elf("per-cpu-offset.elf", |prog, dump| {
        let offsets = prog.symbol("__per_cpu_offset").expect("__per_cpu_offset").0;
        poke(
            dump,
            prog,
            offsets + 8,
            &0x4141_4141_4141_4141u64.to_le_bytes(),
        );
    });
    let out = kpeek(&["ps"], &h);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CPU 1"), "{err}");
    // `cpus` printed `?` for CPU 1 without a word.
    let out = kpeek(&["cpus"], &h);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CPU 1") && !err.contains("CPU 0"), "{err}");
}

/// QEMU's paging dumps hold some physical ranges in two `PT_LOAD`s with the
/// same bytes: silent, as before. One byte changed in the second copy
/// makes them disagree: a warning naming the ranges (was: silent).
#[test]
fn overlapping_loads_with_different_contents_are_named() {
    let fixture = Fixture::load("linux-6.12");
    let core = fixture
        .boot("qemu-vmcoreinfo")
        .dir
        .join("vmcore-paging.elf");
    let mut dump = std::fs::read(&core).expect("dump");
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    let phoff = u64_at(&dump, 32) as usize;
    let phnum = usize::from(u16::from_le_bytes([dump[56], dump[57]]));
    // (paddr, filesz, offset, header) of each PT_LOAD, by physical address.
    let mut runs: Vec<(u64, u64, u64, usize)> = (0..phnum)
        .map(|i| phoff + 56 * i)
        .filter(|&ph| u32::from_le_bytes(dump[ph..ph + 4].try_into().expect("4")) == 1)
        .map(|ph| {
            let r = (u64_at(&dump, ph + 24), u64_at(&dump, ph + 32));
            (r.0, r.1, u64_at(&dump, ph + 8), ph)
        })
        .filter(|r| r.1 > 0)
        .collect();
    runs.sort_by_key(|r| (r.0, std::cmp::Reverse(r.1)));
    // Its aliases point at the same bytes of the file; a conflict is made
    // by pointing the second of a pair one page further on.
    let (_, second) = runs
        .windows(2)
        .map(|w| (w[0], w[1]))
        .find(|(a, b)| {
            let (off, len) = (b.2 as usize, b.1 as usize);
            b.0 < a.0 + a.1
                && off + 4096 + len <= dump.len()
                && dump[off..off + len] != dump[off + 4096..off + 4096 + len]
        })
        .expect("the paging dump has aliasing PT_LOADs");
    let h = Hostile {
        vmlinux: fixture.vmlinux(),
        core: core.clone(),
        strings: 0,
    };
    let clean = kpeek(&["info"], &h);
    std::mem::forget(h); // the fixture itself: not to be removed
    assert!(
        !stderr_of(&clean).contains("overlapping"),
        "{}",
        stderr_of(&clean)
    );
    dump[second.3 + 8..second.3 + 16].copy_from_slice(&(second.2 + 4096).to_le_bytes());
    let h = Hostile {
        vmlinux: fixture.vmlinux(),
        core: scratch("overlap.elf"),
        strings: 0,
    };
    std::fs::write(&h.core, &dump).expect("write");
    let out = kpeek(&["info"], &h);
    let err = stderr_of(&out);
    assert!(err.contains("overlapping PT_LOAD"), "{err}");
    assert!(err.contains(&format!("{:#x}", second.0)), "{err}");
}
