//! Types from BTF against the real `pahole -F btf` (dwarves 1.24), run now
//! on the fixtures' vmlinux files (both carry a `.BTF` section).
//!
//! Without pahole these tests fail, saying how to install it
//! (`common::require_tool`); `cargo nextest run` installs it first.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kpeek::debuginfo::{btf, KernelDebugInfo, TypeSource};
use kpeek::render::pahole::{render_pahole, render_pahole_all, PaholeOptions};

/// Real `pahole -F btf [-C name] file`.
fn pahole_btf(file: &Path, name: Option<&str>) -> String {
    let mut cmd = Command::new(common::require_tool("pahole"));
    cmd.args(["-F", "btf"]);
    if let Some(n) = name {
        cmd.args(["-C", n]);
    }
    let out = cmd.arg(file).output().expect("pahole runs");
    assert!(out.status.success(), "pahole -F btf failed on {name:?}");
    String::from_utf8(out.stdout).expect("pahole prints UTF-8")
}

/// The structs of a fixture's pahole oracle list (`oracles/pahole/*.txt`).
fn oracle_structs(fixture: &common::Fixture) -> Vec<String> {
    let dir = fixture.oracle_path("pahole");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".txt")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(
        names.len() > 50,
        "{}: only {} structs",
        dir.display(),
        names.len()
    );
    names
}

/// `kpeek pahole --btf -C name`, rendered in-process.
fn kpeek_pahole_btf(di: &KernelDebugInfo, name: &str) -> String {
    let mut out = Vec::new();
    render_pahole(di, &[name.to_string()], &PaholeOptions::default(), &mut out)
        .unwrap_or_else(|e| panic!("kpeek pahole --btf {name}: {e}"));
    String::from_utf8(out).expect("UTF-8")
}

/// Every struct of the oracle list, from the vmlinux's `.BTF`, is
/// byte-identical to `pahole -F btf -C`.
#[test]
fn oracle_structs_equal_pahole_btf() {
    common::require_tool("pahole");
    for fixture in common::Fixture::all() {
        let vmlinux = fixture.vmlinux();
        let di = KernelDebugInfo::open_btf(&vmlinux, btf::DEFAULT_CACHELINE).expect("opens .BTF");
        assert_eq!(di.type_source(), TypeSource::Btf);
        let names = oracle_structs(&fixture);
        let mut bad = Vec::new();
        for name in &names {
            let want = pahole_btf(&vmlinux, Some(name));
            assert!(
                !want.is_empty(),
                "{}: pahole -F btf knows no {name}",
                fixture.name
            );
            let got = kpeek_pahole_btf(&di, name);
            if got != want {
                bad.push(format!("{name}: {}", common::first_difference(&want, &got)));
            }
        }
        eprintln!(
            "{}: {}/{} structs identical to pahole -F btf",
            fixture.name,
            names.len() - bad.len(),
            names.len()
        );
        assert!(bad.is_empty(), "{}:\n{}", fixture.name, bad.join("\n"));
    }
}

/// `pahole -F btf` with no `-C` (every struct and union) equals
/// `kpeek pahole --btf --all`.
#[test]
fn every_struct_equals_pahole_btf() {
    common::require_tool("pahole");
    for fixture in common::Fixture::all() {
        let vmlinux = fixture.vmlinux();
        let di = KernelDebugInfo::open_btf(&vmlinux, btf::DEFAULT_CACHELINE).expect("opens .BTF");
        let want = pahole_btf(&vmlinux, None);
        let mut out = Vec::new();
        render_pahole_all(&di, &PaholeOptions::default(), &mut out).expect("renders");
        let got = String::from_utf8(out).expect("UTF-8");
        assert!(want.lines().count() > 10_000, "{}", fixture.name);
        assert!(
            got == want,
            "{}: {}",
            fixture.name,
            common::first_difference(&want, &got)
        );
    }
}

/// The `.BTF` section cut out of the vmlinux (as `/sys/kernel/btf/vmlinux`
/// holds it) reads like the vmlinux, and the CLI takes both.
#[test]
fn raw_btf_blob_reads_like_the_section() {
    common::require_tool("pahole");
    let fixture = &common::Fixture::all()[0];
    let vmlinux = fixture.vmlinux();
    let bytes = std::fs::read(&vmlinux).expect("reads vmlinux");
    let elf = object::read::elf::ElfFile64::<object::LittleEndian>::parse(&*bytes).expect("ELF");
    use object::{Object, ObjectSection};
    let section = elf.section_by_name(".BTF").expect(".BTF");
    let raw: PathBuf = std::env::temp_dir().join(format!("kpeek-btf-{}", std::process::id()));
    std::fs::write(&raw, section.data().expect("data")).expect("writes");
    let from_blob = KernelDebugInfo::open_btf(&raw, btf::DEFAULT_CACHELINE).expect("opens raw BTF");
    for name in ["task_struct", "sk_buff", "zone"] {
        assert_eq!(
            kpeek_pahole_btf(&from_blob, name),
            pahole_btf(&raw, Some(name)),
            "{name}"
        );
    }
    let out = common::kpeek_command()
        .args(["pahole", "--btf"])
        .arg(&raw)
        .args(["-C", "task_struct"])
        .output()
        .expect("kpeek runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        pahole_btf(&vmlinux, Some("task_struct"))
    );
    std::fs::remove_file(&raw).ok();
}

/// The debug-info API the kernel walks use (`type_size`, `member`,
/// `enumerator`) gives the same answers from BTF as from DWARF, for what
/// the task walk reads. DWARF's answers are themselves checked against
/// pahole in tests/pahole.rs.
#[test]
fn member_lookups_agree_with_dwarf() {
    let paths = [
        ("task_struct", "tasks"),
        ("task_struct", "pid"),
        ("task_struct", "tgid"),
        ("task_struct", "comm"),
        ("task_struct", "thread.sp"),
        ("task_struct", "se.vruntime"),
        ("task_struct", "thread_group"),
        ("task_struct", "signal"),
        ("task_struct", "flags"),
        ("task_struct", "real_parent"),
        ("task_struct", "in_execve"),
        ("task_struct", "sched_reset_on_fork"),
        ("signal_struct", "thread_head"),
        ("pid", "numbers[0].nr"),
        ("sk_buff", "pkt_type"),
        ("inode", "i_sb"),
        ("mm_struct", "pgd"),
    ];
    for fixture in common::Fixture::all() {
        let vmlinux = fixture.vmlinux();
        let dwarf = KernelDebugInfo::open(&vmlinux).expect("DWARF");
        let btf = KernelDebugInfo::open_btf(&vmlinux, btf::DEFAULT_CACHELINE).expect("BTF");
        for (ty, path) in paths {
            let want = dwarf.member(ty, path);
            let got = btf.member(ty, path);
            match (want, got) {
                // Type ids are DIE offsets on one side, BTF ids on the other.
                (Ok(mut w), Ok(mut g)) => {
                    w.type_id = None;
                    g.type_id = None;
                    assert_eq!(g, w, "{} {ty}.{path}", fixture.name)
                }
                (Err(_), Err(_)) => {}
                (w, g) => panic!("{} {ty}.{path}: DWARF {w:?}, BTF {g:?}", fixture.name),
            }
        }
        for ty in ["task_struct", "struct list_head", "pid_t", "unsigned int"] {
            assert_eq!(
                btf.type_size(ty).ok(),
                dwarf.type_size(ty).ok(),
                "{} {ty}",
                fixture.name
            );
        }
        for e in [
            "PIDTYPE_PID",
            "PIDTYPE_TGID",
            "PIDTYPE_MAX",
            "TASK_COMM_LEN",
        ] {
            assert_eq!(
                btf.enumerator(e),
                dwarf.enumerator(e),
                "{} {e}",
                fixture.name
            );
        }
        // A misspelt type gets suggestions from BTF too.
        let err = btf.member("task_strukt", "pid").unwrap_err();
        assert!(err.to_string().contains("task_struct"), "{err}");
    }
}

/// Damaged BTF: clear errors, no panic.
#[test]
fn damaged_btf_is_a_clear_error() {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("kpeek-badbtf-{}", std::process::id()));
    std::fs::write(&path, b"\x9f\xeb\x01\x00\x18\x00\x00\x00\xff\xff\xff\x7f").unwrap();
    let err = KernelDebugInfo::open_btf(&path, 64).unwrap_err();
    assert_eq!(err.code(), "bad_file", "{err}");
    std::fs::write(&path, b"not BTF and not ELF").unwrap();
    let err = KernelDebugInfo::open_btf(&path, 64).unwrap_err();
    assert_eq!(err.code(), "bad_file", "{err}");
    std::fs::remove_file(&path).ok();
}

/// The running machine's own kernel BTF (`/sys/kernel/btf/vmlinux`, a raw
/// blob of a distro-sized kernel, with `DECL_TAG`s and `ENUM64`s), every
/// struct and union: identical to `pahole -F btf` on it. Skipped, saying
/// so, where the kernel exposes no BTF; a failure under CI.
#[test]
fn the_running_kernels_btf_equals_pahole() {
    let sys = Path::new("/sys/kernel/btf/vmlinux");
    if !sys.exists() {
        common::skip_unless_ci("this kernel has no /sys/kernel/btf/vmlinux");
        return;
    }
    common::require_tool("pahole");
    let di =
        KernelDebugInfo::open_btf(sys, btf::DEFAULT_CACHELINE).expect("opens the kernel's BTF");
    let want = pahole_btf(sys, None);
    let mut out = Vec::new();
    render_pahole_all(&di, &PaholeOptions::default(), &mut out).expect("renders");
    let got = String::from_utf8(out).expect("UTF-8");
    eprintln!("/sys/kernel/btf/vmlinux: {} lines", want.lines().count());
    assert!(got == want, "{}", common::first_difference(&want, &got));
}

/// A real kernel's BTF with random bytes changed: every lookup and render
/// ends in an answer or an error, never a panic or a hang.
#[test]
fn corrupted_kernel_btf_never_panics() {
    let fixture = common::Fixture::load("linux-6.12");
    let bytes = std::fs::read(fixture.vmlinux()).expect("reads vmlinux");
    let elf = object::read::elf::ElfFile64::<object::LittleEndian>::parse(&*bytes).expect("ELF");
    use object::{Object, ObjectSection};
    let blob = elf
        .section_by_name(".BTF")
        .expect(".BTF")
        .data()
        .expect("data")
        .to_vec();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let start = std::time::Instant::now();
    let (mut opened, mut rendered) = (0, 0);
    for trial in 0..150 {
        let mut d = blob.clone();
        for _ in 0..1 + next() % 4 {
            // Mostly the type section (after the 24-byte header), sometimes
            // the header itself.
            let at = if trial % 10 == 0 {
                (next() % 24) as usize
            } else {
                24 + (next() as usize) % (d.len() - 24)
            };
            d[at] = next() as u8;
        }
        let Ok(di) = KernelDebugInfo::from_btf_bytes(Path::new("corrupt"), d, 64) else {
            continue;
        };
        opened += 1;
        for name in ["task_struct", "sk_buff", "page", "zone"] {
            let mut out = Vec::new();
            if render_pahole(
                &di,
                &[name.to_string()],
                &PaholeOptions::default(),
                &mut out,
            )
            .is_ok()
            {
                rendered += 1;
            }
        }
        // Random types, laid out: damaged members anywhere are reached.
        for _ in 0..300 {
            let _ = di.layout_of(kpeek::debuginfo::TypeId(next() % 70_000), "x", 64);
        }
        let _ = di.member("task_struct", "thread.sp");
        let _ = di.type_size("struct list_head");
        let _ = di.enumerator("PIDTYPE_TGID");
    }
    eprintln!(
        "150 corruptions: {opened} parsed, {rendered} renders succeeded, {:?}",
        start.elapsed()
    );
    assert!(opened > 50, "most single-byte corruptions still parse");
}
