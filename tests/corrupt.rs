//! Damaged inputs, generated from the real fixture dumps: truncation at
//! many offsets and byte flips in every structural part of each format
//! (ELF header, program headers, notes; kdump header, sub-header, both
//! bitmaps, page descriptors; flattened chunk headers), and a task's stack
//! overwritten with garbage. For every variant, `kpeek info`, `ps` and
//! `bt --all` must end on their own (a timeout says hang), by a clean exit
//! (status 0, 1 or 2, never a signal), without a panic message, and within
//! a bounded address space (`RLIMIT_AS`: an allocation sized by a corrupt
//! header would abort the run).
//!
//! The variants are deterministic: the same offsets every run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Fixture;

/// Longest a damaged dump may take per command.
const LIMIT: Duration = Duration::from_secs(30);
/// The address space a command may use on a damaged dump (the dumps and
/// the vmlinux are mapped, the guests had 128 MiB): an allocation sized by
/// a corrupt header fails the run instead of passing unnoticed.
const MAX_ADDRESS_SPACE: u64 = 3 << 30;

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

extern "C" {
    fn setrlimit(resource: i32, rlim: *const [u64; 2]) -> i32;
}
/// `RLIMIT_AS` on Linux.
const RLIMIT_AS: i32 = 9;

/// Run kpeek with a deadline and a cap on its address space.
fn run(args: &[&std::ffi::OsStr]) -> Outcome {
    use std::os::unix::process::CommandExt;
    let mut cmd = common::kpeek_command();
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; it only touches the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = [MAX_ADDRESS_SPACE, MAX_ADDRESS_SPACE];
            if setrlimit(RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn kpeek");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        stderr_pipe.read_to_string(&mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("kpeek {args:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: status.code(),
        stderr: reader.join().unwrap_or_default(),
    }
}

fn check(what: &str, vmlinux: &Path, dump: &Path) {
    // bt --all opens the dump, finds the kernel, walks every task and
    // unwinds every stack; info reads the notes and every CPU.
    for cmd in [&["info"][..], &["bt", "--all", "--no-lines"]] {
        let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|s| s.as_ref()).collect();
        args.extend([
            "--vmlinux".as_ref(),
            vmlinux.as_os_str(),
            "--core".as_ref(),
            dump.as_os_str(),
        ]);
        let out = run(&args);
        assert!(
            matches!(out.code, Some(0..=2)),
            "{what}: kpeek {cmd:?} ended with {:?}: {}",
            out.code,
            out.stderr
        );
        assert!(
            !out.stderr.contains("panicked"),
            "{what}: kpeek {cmd:?} panicked: {}",
            out.stderr
        );
        if out.code != Some(0) {
            assert!(
                out.stderr.starts_with("kpeek: "),
                "{what}: kpeek {cmd:?} failed without saying why: {:?}",
                out.stderr
            );
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kpeek-corrupt-{}-{name}", std::process::id()))
}

/// Offsets to cut a file at: the start of every structure, and points
/// spread through the data.
fn cuts(len: usize, structural: &[usize]) -> Vec<usize> {
    let mut v: Vec<usize> = structural.iter().copied().filter(|&o| o < len).collect();
    for frac in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89] {
        v.push(len * frac / 100);
    }
    v.push(len - 1);
    v.sort_unstable();
    v.dedup();
    v
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Structural offsets of an ELF dump: the header's fields, each program
/// header, and the start of the note segment.
fn elf_structure(b: &[u8]) -> Vec<usize> {
    let phoff = u64_at(b, 32) as usize;
    let phnum = usize::from(u16::from_le_bytes([b[56], b[57]]));
    let mut v: Vec<usize> = (0..64).step_by(8).collect();
    for i in 0..phnum.min(64) {
        let ph = phoff + 56 * i;
        v.extend([ph, ph + 4, ph + 8, ph + 16, ph + 32, ph + 40]);
        if u32_at(b, ph) == 4 {
            // PT_NOTE: its first notes' headers and descriptors.
            let off = u64_at(b, ph + 8) as usize;
            v.extend((0..192).step_by(24).map(|d| off + d));
        }
    }
    v
}

/// Structural offsets of a kdump-compressed file: the header, the
/// sub-header, both bitmaps' starts and the first page descriptors.
fn kdump_structure(b: &[u8]) -> Vec<usize> {
    // disk_dump_header: signature[8] header_version(4) utsname(390) pad(2)
    // timestamp(16) status(4) block_size(4) sub_hdr_size(4)
    // bitmap_blocks(4) max_mapnr(4) total_ram_blocks(4) device_blocks(4)
    // written_blocks(4) current_cpu(4) nr_cpus(4)
    let block_size = u32_at(b, 432) as usize;
    let sub_hdr_size = u32_at(b, 436) as usize;
    let bitmap_blocks = u32_at(b, 440) as usize;
    let mut v: Vec<usize> = (0..464).step_by(16).collect();
    let sub = block_size;
    v.extend((0..104).step_by(16).map(|d| sub + d));
    let bitmap1 = block_size * (1 + sub_hdr_size);
    let bitmap2 = bitmap1 + bitmap_blocks * block_size / 2;
    let descs = bitmap1 + bitmap_blocks * block_size;
    for base in [bitmap1, bitmap2] {
        v.extend((0..8).map(|d| base + d * 64));
    }
    v.extend((0..12).map(|d| descs + d * 24));
    v.extend((0..12).map(|d| descs + d * 24 + 8));
    v
}

/// Each damaged variant, written to `file` in turn: every cut, then every
/// 4-byte flip; `visit` checks it. Returns how many there were.
fn each_variant(
    name: &str,
    original: &[u8],
    structure: &[usize],
    file: &Path,
    mut visit: impl FnMut(&str),
) -> usize {
    let mut n = 0;
    for cut in cuts(original.len(), structure) {
        std::fs::write(file, &original[..cut]).expect("write variant");
        visit(&format!("{name} cut at {cut}"));
        n += 1;
    }
    let mut b = original.to_vec();
    for &off in structure.iter().filter(|&&o| o + 4 <= original.len()) {
        for byte in &mut b[off..off + 4] {
            *byte ^= 0xff;
        }
        std::fs::write(file, &b).expect("write variant");
        visit(&format!("{name} flipped at {off}"));
        for byte in &mut b[off..off + 4] {
            *byte ^= 0xff;
        }
        n += 1;
    }
    n
}

#[test]
fn damaged_dumps_of_every_format_fail_cleanly() {
    let fixture = Fixture::load("linux-6.1");
    let vmlinux = fixture.vmlinux();
    let boot = fixture.boot("kdump");
    let dumps = boot.dumps();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = dumps
            .iter()
            .map(|(path, _)| scope.spawn(|| damage_one(&vmlinux, path)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a dump's variants failed"))
            .sum()
    });
    eprintln!("{total} damaged variants, each through info and bt --all");
    assert!(total >= 150, "only {total} variants");
}

/// Every variant of one dump; returns how many.
fn damage_one(vmlinux: &Path, path: &Path) -> usize {
    {
        let original = std::fs::read(path).expect("dump");
        let name = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("dump")
            .to_owned();
        let structure = if original.starts_with(b"\x7fELF") {
            elf_structure(&original)
        } else if original.starts_with(b"KDUMP   ") {
            kdump_structure(&original)
        } else {
            // Flattened: the 4 KiB header, then chunk headers (offset, size: big-endian i64s).
            let mut v = vec![0, 16, 4096, 4096 + 8];
            let mut at = 4096usize;
            for _ in 0..24 {
                if at + 16 > original.len() {
                    break;
                }
                let size = i64::from_be_bytes(original[at + 8..at + 16].try_into().expect("8"));
                v.extend([at, at + 8]);
                if size < 0 {
                    break;
                }
                at += 16 + size as usize;
            }
            v
        };
        let file = scratch(&name);
        let n = each_variant(&name, &original, &structure, &file, |what| {
            check(what, vmlinux, &file)
        });
        std::fs::remove_file(&file).ok();
        n
    }
}

/// A task's kernel stack overwritten with garbage: its trace ends with an
/// error saying where, every other task still unwinds.
#[test]
fn a_garbage_stack_ends_that_trace_and_no_other() {
    use kpeek::kernel::{task_list, OpenOptions, Program};
    let fixture = Fixture::load("linux-6.12");
    let core = fixture.boot("qemu-plain").dir.join("vmcore.elf");
    let prog = Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect("open");
    let list = task_list(&prog).expect("walk");
    let victim = list
        .tasks
        .iter()
        .find(|t| t.comm == "kpw-alpha")
        .expect("kpw-alpha");
    let sp_off = prog
        .debug
        .member("task_struct", "thread.sp")
        .expect("thread.sp")
        .offset;
    let sp = prog
        .read_u64(kpeek::addr::VirtAddr(victim.task.0 + sp_off))
        .expect("sp");
    // Overwrite the frame and what is above it, 512 bytes, with a pattern
    // that looks like kernel addresses but points nowhere useful.
    let mut dump = std::fs::read(&core).expect("dump");
    for i in 0..64u64 {
        let va = sp + 8 * i;
        let Ok(phys) = phys_of(&prog, va) else {
            continue;
        };
        let off = common::elf_file_offset(&dump, phys);
        dump[off..off + 8].copy_from_slice(&(0xffff_ffff_8100_0000u64 + 0x1234 * i).to_le_bytes());
    }
    let file = scratch("garbage-stack.elf");
    std::fs::write(&file, &dump).expect("write");
    let out = common::kpeek_command()
        .args(["bt", "--all", "--no-lines", "--format", "json", "--vmlinux"])
        .arg(fixture.vmlinux())
        .arg("--core")
        .arg(&file)
        .output()
        .expect("run");
    std::fs::remove_file(&file).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let tasks = json["tasks"].as_array().expect("tasks");
    let mut ended_badly = Vec::new();
    for t in tasks {
        let reason = t["end"]["reason"].as_str().unwrap_or("");
        if !matches!(reason, "bottom" | "user" | "no_stack") {
            ended_badly.push((
                t["comm"].as_str().unwrap_or("").to_owned(),
                t["end"].clone(),
            ));
        }
    }
    assert!(
        ended_badly.iter().any(|(c, _)| c == "kpw-alpha"),
        "the garbage stack unwound cleanly: {ended_badly:?}"
    );
    assert!(
        ended_badly.len() <= 2,
        "other tasks were affected: {ended_badly:?}"
    );
}

fn phys_of(prog: &kpeek::kernel::Program, va: u64) -> kpeek::Result<u64> {
    match prog.space.translate(kpeek::addr::VirtAddr(va)) {
        Ok(p) if prog.read(kpeek::addr::VirtAddr(va), &mut [0u8; 8]).is_ok() => Ok(p.0),
        _ => prog
            .space
            .walk(prog.located.layout.pgd, kpeek::addr::VirtAddr(va))
            .map(|p| p.0),
    }
}
