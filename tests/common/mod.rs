//! The fixture harness: real kernels, real dumps and the guest's own truth.
//!
//! `vmlinux-fixtures/linux-*/` hold zstd-compressed tar archives and a
//! `manifest.json` (see `vmlinux-fixtures/README.md`). An archive is
//! unpacked once into `target/fixtures/<fixture>/<archive>/`, keyed by its
//! checksum in the manifest, and reused by every later test run.
#![allow(dead_code)]

pub mod guest;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository's `vmlinux-fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vmlinux-fixtures")
}

/// Where archives are unpacked.
fn cache_dir() -> PathBuf {
    match std::env::var_os("KPEEK_FIXTURE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"),
    }
}

/// One fixture kernel: `vmlinux-fixtures/linux-6.1` and so on.
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub manifest: Value,
}

impl Fixture {
    /// Every fixture that has a manifest, by name.
    pub fn all() -> Vec<Fixture> {
        let mut names: Vec<String> = fs::read_dir(fixtures_dir())
            .expect("vmlinux-fixtures/ is readable")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("manifest.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            !names.is_empty(),
            "no fixtures under {}",
            fixtures_dir().display()
        );
        names.iter().map(|n| Fixture::load(n)).collect()
    }

    /// A fixture by name, e.g. `linux-6.1`.
    pub fn load(name: &str) -> Fixture {
        let dir = fixtures_dir().join(name);
        let text = fs::read_to_string(dir.join("manifest.json"))
            .unwrap_or_else(|e| panic!("{}/manifest.json: {e}", dir.display()));
        let manifest = serde_json::from_str(&text).expect("manifest.json is JSON");
        Fixture {
            name: name.to_owned(),
            dir,
            manifest,
        }
    }

    /// The unpacked contents of one archive of this fixture.
    pub fn archive(&self, archive: &str) -> PathBuf {
        let sha = self.manifest["archives"][archive]["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no archive {archive} in the manifest", self.name));
        let dest = cache_dir()
            .join(&self.name)
            .join(archive.trim_end_matches(".tar.zst"));
        let stamp = dest.join(".sha256");
        if fs::read_to_string(&stamp).ok().as_deref() == Some(sha) {
            return dest;
        }
        unpack(&self.dir.join(archive), &dest, sha)
            .unwrap_or_else(|e| panic!("unpacking {}/{archive}: {e}", self.name));
        dest
    }

    /// The kernel image with debug info.
    pub fn vmlinux(&self) -> PathBuf {
        self.archive("kernel.tar.zst").join("vmlinux")
    }

    /// A file from the kernel archive (bzImage, System.map, gdb/...).
    pub fn kernel_file(&self, name: &str) -> PathBuf {
        self.archive("kernel.tar.zst").join(name)
    }

    /// The names of the boots this fixture recorded.
    pub fn boot_names(&self) -> Vec<String> {
        self.manifest["boots"]
            .as_object()
            .expect("boots")
            .keys()
            .cloned()
            .collect()
    }

    /// One boot: its dumps, its truth.
    pub fn boot(&self, name: &str) -> Boot {
        let facts = self.manifest["boots"][name].clone();
        assert!(facts.is_object(), "{}: no boot {name}", self.name);
        let dir = self.archive(facts["archive"].as_str().expect("archive"));
        Boot {
            fixture: self.name.clone(),
            name: name.to_owned(),
            dir,
            facts,
        }
    }

    /// A saved oracle output, e.g. `pahole/task_struct.txt`.
    pub fn oracle_path(&self, rel: &str) -> PathBuf {
        self.dir.join("oracles").join(rel)
    }

    /// The vmlinux's link-time `_text`.
    pub fn vmlinux_text(&self) -> u64 {
        hex(&self.manifest["vmlinux_text"])
    }
}

/// One boot of a fixture kernel.
pub struct Boot {
    pub fixture: String,
    pub name: String,
    pub dir: PathBuf,
    /// The manifest's record of this boot.
    pub facts: Value,
}

impl Boot {
    /// The dumps taken of this boot: (file, format name from the manifest).
    pub fn dumps(&self) -> Vec<(PathBuf, String)> {
        let mut dumps: Vec<_> = self.facts["dumps"]
            .as_object()
            .expect("dumps")
            .iter()
            .map(|(file, format)| {
                (
                    self.dir.join(file),
                    format.as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        dumps.sort();
        dumps
    }

    /// The KASLR offset the guest itself saw (`/proc/kallsyms` `_text` minus the vmlinux `_text`).
    pub fn kaslr_offset(&self) -> u64 {
        hex(&self.facts["kaslr_offset"])
    }

    /// The guest's own truth, recorded just before the dump.
    pub fn truth(&self) -> Truth {
        Truth::load(&self.dir.join("truth.jsonl"))
    }
}

/// What the guest said about itself (`kptruth`'s JSON lines).
pub struct Truth {
    pub files: BTreeMap<String, String>,
    pub dmesg: String,
    pub tasks: Vec<TruthTask>,
    /// kptruth and its parent shell: they exited before the dump.
    pub capturers: Vec<i64>,
}

/// One thread as the guest's `/proc/PID/task/TID/` showed it.
#[derive(Clone, Debug)]
pub struct TruthTask {
    pub tgid: i64,
    pub tid: i64,
    pub comm: String,
    pub stat: String,
    pub status: String,
    pub stack: Option<String>,
    pub cmdline: Option<String>,
}

impl TruthTask {
    /// Fields of `/proc/PID/stat` after the comm: `[0]` is the state letter.
    pub fn stat_fields(&self) -> Vec<&str> {
        let rest = self.stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        rest.split_whitespace().collect()
    }

    pub fn state(&self) -> char {
        self.stat_fields()
            .first()
            .and_then(|s| s.chars().next())
            .unwrap_or('?')
    }

    pub fn ppid(&self) -> i64 {
        self.stat_fields()
            .get(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1)
    }

    /// `/proc/PID/stat` field 9, the task's flags.
    pub fn flags(&self) -> u64 {
        self.stat_fields()
            .get(6)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// `PF_KTHREAD`, as the guest's kernel reported it.
    pub fn is_kthread(&self) -> bool {
        self.flags() & 0x0020_0000 != 0
    }
}

impl Truth {
    pub fn load(path: &Path) -> Truth {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut truth = Truth {
            files: BTreeMap::new(),
            dmesg: String::new(),
            tasks: Vec::new(),
            capturers: Vec::new(),
        };
        let mut ended = false;
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad truth line: {e}", path.display()));
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            match v["kind"].as_str() {
                Some("begin") => {
                    truth.capturers = vec![
                        v["self"].as_i64().unwrap_or(-1),
                        v["parent"].as_i64().unwrap_or(-1),
                    ]
                }
                Some("file") => {
                    truth
                        .files
                        .insert(s("path").unwrap_or_default(), s("data").unwrap_or_default());
                }
                Some("dmesg") => truth.dmesg = s("data").unwrap_or_default(),
                Some("task") => truth.tasks.push(TruthTask {
                    tgid: v["tgid"].as_i64().expect("tgid"),
                    tid: v["tid"].as_i64().expect("tid"),
                    comm: s("comm")
                        .unwrap_or_default()
                        .trim_end_matches('\n')
                        .to_owned(),
                    stat: s("stat").unwrap_or_default(),
                    status: s("status").unwrap_or_default(),
                    stack: s("stack"),
                    cmdline: s("cmdline"),
                }),
                Some("end") => {
                    assert_eq!(
                        v["tasks"].as_u64(),
                        Some(truth.tasks.len() as u64),
                        "truth task count"
                    );
                    ended = true;
                }
                other => panic!("{}: unknown truth record {other:?}", path.display()),
            }
        }
        assert!(
            ended,
            "{}: the truth has no end record (cut short?)",
            path.display()
        );
        truth
    }

    /// A symbol's run-time address from the guest's `/proc/kallsyms`.
    pub fn kallsyms(&self, name: &str) -> Option<u64> {
        self.files["/proc/kallsyms"].lines().find_map(|line| {
            let mut it = line.split_whitespace();
            let addr = it.next()?;
            let _kind = it.next()?;
            (it.next()? == name)
                .then(|| u64::from_str_radix(addr, 16).ok())
                .flatten()
        })
    }

    /// (address, type, name) of the core kernel's `/proc/kallsyms` lines
    /// (module symbols, `[name]`, left out).
    pub fn core_kallsyms(&self) -> Vec<(u64, char, String)> {
        self.files["/proc/kallsyms"]
            .lines()
            .filter(|l| !l.contains('['))
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?.chars().next()?;
                Some((addr, kind, f.next()?.to_string()))
            })
            .collect()
    }

    /// The physical address of `_text`: `/proc/iomem`'s "Kernel code" start.
    pub fn kernel_code_phys(&self) -> Option<u64> {
        self.files["/proc/iomem"].lines().find_map(|line| {
            let (range, name) = line.split_once(" : ")?;
            (name.trim() == "Kernel code").then(|| {
                let start = range.trim().split('-').next()?;
                u64::from_str_radix(start, 16).ok()
            })?
        })
    }
}

fn hex(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Unpack `archive` into `dest` atomically: into a sibling temporary
/// directory first, then renamed, so parallel test processes never see a
/// half-written fixture.
fn unpack(archive: &Path, dest: &Path, sha: &str) -> io::Result<()> {
    let parent = dest.parent().expect("dest has a parent");
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".unpack-{}-{}",
        std::process::id(),
        sha.get(..12).unwrap_or(sha)
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let file = fs::File::open(archive)?;
    let mut decoder = zstd::stream::read::Decoder::new(file)?;
    decoder.window_log_max(31)?;
    tar::Archive::new(decoder).unpack(&tmp)?;
    fs::write(tmp.join(".sha256"), sha)?;
    let old = parent.join(format!(".old-{}", std::process::id()));
    if dest.exists() {
        fs::rename(dest, &old)?;
    }
    match fs::rename(&tmp, dest) {
        Ok(()) => {}
        // Another process won the race with an identical copy.
        Err(_) if dest.join(".sha256").is_file() => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(e),
    }
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Where a program a test runs comes from: its Debian package.
fn debian_package(tool: &str) -> &'static str {
    match tool {
        "pahole" => "dwarves",
        "qemu-system-x86_64" => "qemu-system-x86",
        "gdb" => "gdb",
        "objcopy" | "addr2line" => "binutils",
        _ => "?",
    }
}

/// The path of a program a test runs (an oracle such as pahole, or a host
/// such as QEMU or GDB); a test that cannot have it fails, saying which
/// program is missing and how to install it. `cargo nextest run` installs
/// these first (scripts/install-test-deps.sh), so a missing one means that
/// script could not (it said why at the start of the run).
pub fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|p| is_executable(p))
    });
    found.unwrap_or_else(|| {
        let pkg = debian_package(tool);
        let why = std::env::var("KPEEK_TEST_DEPS_NOT_INSTALLED")
            .map(|why| format!(" (scripts/install-test-deps.sh could not: {why})"))
            .unwrap_or_default();
        panic!(
            "this test runs `{tool}`, which is not installed{why}: \
             install the Debian package {pkg} (apt-get install {pkg}, as root), \
             or run `cargo nextest run` as root or with password-less sudo, which installs it"
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// For a test that needs something of this machine no install provides
/// (the running kernel's BTF), before it returns early: says so on stderr;
/// under CI (`CI` set) fails instead. The setup script prints the same at
/// the start of the run, so the skip is never silent.
pub fn skip_unless_ci(reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot run here: {reason}; under CI this is a failure"
    );
    eprintln!("SKIPPED: {reason}");
}

/// `kpeek` (the binary under test), ready for arguments.
pub fn kpeek_command() -> std::process::Command {
    // Cargo sets it for integration tests; examples/tour.rs shares this
    // file but runs no kpeek binary.
    let kpeek = match option_env!("CARGO_BIN_EXE_kpeek") {
        Some(kpeek) => kpeek,
        None => panic!("the kpeek binary is known to integration tests only"),
    };
    std::process::Command::new(kpeek)
}

/// Run the `kpeek` binary with `args`; its exit status and output.
pub fn run_kpeek<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    kpeek_command().args(args).output().expect("run kpeek")
}

/// Where a physical address lives in an ELF dump file.
pub fn elf_file_offset(dump: &[u8], paddr: u64) -> usize {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let elf = ElfFile64::<object::Endianness>::parse(dump).expect("ELF");
    let e = elf.endian();
    for ph in elf.elf_program_headers() {
        let (start, size) = (ph.p_paddr(e), ph.p_filesz(e));
        if ph.p_type(e) == object::elf::PT_LOAD && paddr >= start && paddr < start + size {
            return (ph.p_offset(e) + paddr - start) as usize;
        }
    }
    panic!("physical {paddr:#x} not in the dump");
}

/// The first line where two outputs differ, for a readable failure.
pub fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  pahole: {w:?}\n  kpeek:  {g:?}", i + 1);
        }
    }
    format!(
        "lengths differ: pahole {} lines, kpeek {} lines",
        want.lines().count(),
        got.lines().count()
    )
}

/// Run `cmd` to its end, no input, within `deadline` (killed and a panic
/// after it): (success, stdout, stderr).
pub fn run_to_end(
    cmd: &mut std::process::Command,
    deadline: std::time::Duration,
) -> (bool, String, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (
        status.success(),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

/// A GDB remote-protocol packet: `$body#checksum`.
pub fn rsp_packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

/// Read one reply packet's body (skipping acks).
pub fn rsp_reply(s: &mut std::net::TcpStream) -> String {
    let mut body = Vec::new();
    let mut byte = [0u8; 1];
    let mut inside = false;
    loop {
        std::io::Read::read_exact(s, &mut byte).expect("a reply");
        match (inside, byte[0]) {
            (false, b'$') => inside = true,
            (false, _) => {}
            (true, b'#') => break,
            (true, b) => body.push(b),
        }
    }
    let mut sum = [0u8; 2];
    std::io::Read::read_exact(s, &mut sum).expect("checksum");
    // Run-length encoding: `X*N` is X and N - 29 more of it.
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() {
            let last = out.last().copied().unwrap_or(b' ');
            out.extend(std::iter::repeat_n(last, usize::from(body[i + 1] - 29)));
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` from the
/// guest's `/proc/PID/status`: a task whose counts in the dump are the
/// same did not run between the guest's listing and the dump.
pub fn switches(t: &TruthTask) -> Option<(u64, u64)> {
    let field = |name: &str| {
        t.status.lines().find_map(|l| {
            l.strip_prefix(name)?
                .trim_start_matches(':')
                .trim()
                .parse()
                .ok()
        })
    };
    Some((
        field("voluntary_ctxt_switches")?,
        field("nonvoluntary_ctxt_switches")?,
    ))
}

/// `bt --style proc` against the guest's `/proc/PID/stack`, by the rule of
/// docs/TESTING.md: every switched-out task with a recorded stack that did
/// not run in between ([`switches`]).
#[derive(Debug, Default)]
pub struct StackComparison {
    /// Tasks compared.
    pub compared: usize,
    /// Tasks left out because they ran in between.
    pub ran: usize,
    /// Compared stacks with a module frame.
    pub with_module: usize,
    /// (pid, comm, kpeek's lines, the guest's lines) of each difference.
    pub mismatches: Vec<(i32, String, Vec<String>, Vec<String>)>,
}

/// Compare the stacks of `tasks` unwound by `unwinder` with `truth`.
pub fn compare_proc_stacks(
    unwinder: &kpeek::kernel::stack::Unwinder<'_>,
    tasks: &[kpeek::kernel::Task],
    truth: &Truth,
) -> StackComparison {
    use kpeek::kernel::stack::StackStart;
    let by_pid: std::collections::HashMap<i64, &TruthTask> =
        truth.tasks.iter().map(|t| (t.tid, t)).collect();
    let mut c = StackComparison::default();
    for task in tasks.iter().filter(|t| t.pid > 0) {
        let Some(want) = by_pid.get(&i64::from(task.pid)) else {
            continue;
        };
        let Some(want_stack) = &want.stack else {
            continue;
        };
        let stack = unwinder.task_stack(task);
        if stack.start != StackStart::Switched {
            continue;
        }
        if task.switches != switches(want) {
            c.ran += 1;
            continue;
        }
        c.compared += 1;
        let got = unwinder.proc_stack(&stack);
        let want: Vec<String> = want_stack.lines().map(str::to_owned).collect();
        c.with_module += usize::from(got.iter().any(|l| l.ends_with(']')));
        if got != want {
            c.mismatches.push((task.pid, task.comm.clone(), got, want));
        }
    }
    c
}

/// One line the fixture module printed in its `mode=hung` (vmlinux-fixtures/guest/module): `pid P (COMM) holds|waits TYPE NAME at ADDR`.
#[derive(Debug, Clone)]
pub struct ModuleRecord {
    pub pid: i32,
    pub comm: String,
    pub holds: bool,
    pub ty: String,
    pub name: String,
    pub addr: u64,
}

pub fn module_records(truth: &Truth) -> Vec<ModuleRecord> {
    truth
        .dmesg
        .lines()
        .filter_map(|l| {
            let rest = l.split("kpeek_fixture: hung: pid ").nth(1)?;
            let (pid, rest) = rest.split_once(" (")?;
            let (comm, rest) = rest.split_once(") ")?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let [what, ty, name, "at", addr] = f[..] else {
                return None;
            };
            Some(ModuleRecord {
                pid: pid.parse().ok()?,
                comm: comm.to_owned(),
                holds: what == "holds",
                ty: ty.to_owned(),
                name: name.to_owned(),
                addr: u64::from_str_radix(addr, 16).ok()?,
            })
        })
        .collect()
}

/// `INFO: task COMM:PID blocked for more than N seconds.` lines: (pid, comm, N).
pub fn detector_reports(text: &str) -> Vec<(i32, String, u64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.split("INFO: task ").nth(1)?;
            let (who, rest) = rest.split_once(" blocked for more than ")?;
            let (comm, pid) = who.rsplit_once(':')?;
            let secs = rest.split_whitespace().next()?.parse().ok()?;
            Some((pid.parse().ok()?, comm.to_owned(), secs))
        })
        .collect()
}

/// The panic the guest's serial console printed, if it panicked: the
/// message after `Kernel panic - not syncing: ` and the pid of the task
/// that printed it (the line's caller id, `[  T365]`). The console is
/// recorded by QEMU, not by kpeek: the oracle for every boot that ends in
/// a panic (the sysrq kdump, the hung-task panic).
pub fn console_panic(boot: &Boot) -> Option<(String, i64)> {
    let raw = fs::read(boot.dir.join("console.log")).ok()?;
    let text = String::from_utf8_lossy(&raw);
    text.split(['\n', '\r']).find_map(|line| {
        let (head, msg) = line.split_once("Kernel panic - not syncing: ")?;
        let caller = head.rsplit_once("][")?.1.trim_end_matches([']', ' ']);
        let pid = caller.trim().strip_prefix('T')?.parse().ok()?;
        Some((msg.trim_end().to_owned(), pid))
    })
}

/// The guest's memory size in MiB, from the QEMU command line the manifest recorded (`-m 384M`).
pub fn guest_mib(boot: &Boot) -> u64 {
    let cmd = boot.facts["qemu_command"].as_str().unwrap_or("");
    let mut words = cmd.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-m" {
            return words
                .next()
                .and_then(|m| m.trim_end_matches('M').parse().ok())
                .unwrap_or_else(|| panic!("{}: bad -m in {cmd}", boot.name));
        }
    }
    panic!("{}: no -m in {cmd}", boot.name)
}
