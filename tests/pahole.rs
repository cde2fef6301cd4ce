//! `kpeek pahole` against the real `pahole` (dwarves 1.24), and the
//! `dwarf` API against what pahole prints.
//!
//! The kernels are the fixtures' (`vmlinux-fixtures/linux-*`). The oracle
//! is `pahole -F dwarf -C NAME`: the outputs saved when the fixtures were
//! built (`oracles/pahole/NAME.txt`) and, for other options, pahole run now
//! (`cargo nextest run` installs dwarves 1.24 first; without pahole those
//! tests fail, saying how to install it: `common::require_tool`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kpeek::addr::LinkAddr;
use kpeek::debuginfo::KernelDebugInfo;
use kpeek::render::pahole::{render_pahole, render_pahole_all, PaholeOptions};

/// The structs `kpeek pahole` must print exactly like pahole.
const STRUCTS: &[&str] = &[
    "task_struct",
    "mm_struct",
    "signal_struct",
    "sighand_struct",
    "thread_struct",
    "thread_info",
    "cred",
    "files_struct",
    "fs_struct",
    "nsproxy",
    "pid",
    "upid",
    "pid_namespace",
    "uts_namespace",
    "new_utsname",
    "page",
    "folio",
    "file",
    "inode",
    "dentry",
    "super_block",
    "address_space",
    "vm_area_struct",
    "list_head",
    "hlist_head",
    "hlist_node",
    "rb_node",
    "rb_root",
    "wait_queue_head",
    "mutex",
    "rw_semaphore",
    "spinlock",
    "qspinlock",
    "timer_list",
    "hrtimer",
    "work_struct",
    "kmem_cache",
    "module",
    "kobject",
    "device",
    "pt_regs",
    "inactive_task_frame",
    "fpu",
    "fpstate",
    "xregs_state",
    "desc_struct",
    "gate_struct",
    "idt_bits",
    "orc_entry",
    "mem_section",
    "zone",
    "pglist_data",
    "per_cpu_pages",
    "rq",
    "cfs_rq",
    "sched_entity",
    "sched_rt_entity",
    "load_weight",
    "sched_avg",
    "printk_ringbuffer",
    "prb_desc_ring",
    "prb_data_ring",
    "prb_desc",
    "printk_info",
    "dev_printk_info",
    "kernel_symbol",
    "elf64_hdr",
    "irq_desc",
    "bpf_prog",
    "btf_type",
    "sk_buff",
    "callback_head",
    "llist_node",
    "seqcount",
];

fn vmlinux(version: &str) -> PathBuf {
    common::Fixture::load(&format!("linux-{version}")).vmlinux()
}

/// `pahole -F dwarf -C name vmlinux`, or `None` when pahole prints nothing.
/// Plain `-C` outputs come from the fixture's saved oracle when it has one.
fn pahole(vmlinux: &Path, args: &[&str], name: &str) -> Option<String> {
    if args.is_empty() {
        for fixture in common::Fixture::all() {
            if fixture.vmlinux() == vmlinux {
                let saved = fixture.oracle_path(&format!("pahole/{name}.txt"));
                if let Ok(text) = std::fs::read_to_string(saved) {
                    return Some(text);
                }
            }
        }
    }
    let out = Command::new(common::require_tool("pahole"))
        .args(["-F", "dwarf"])
        .args(args)
        .args(["-C", name])
        .arg(vmlinux)
        .output()
        .expect("pahole runs");
    let text = String::from_utf8(out.stdout).expect("pahole prints UTF-8");
    (!text.is_empty()).then_some(text)
}

/// `kpeek pahole -C name` with `opts`, rendered in-process.
fn kpeek_pahole_text(di: &KernelDebugInfo, name: &str, opts: &PaholeOptions) -> String {
    let mut out = Vec::new();
    render_pahole(di, &[name.to_string()], opts, &mut out)
        .unwrap_or_else(|e| panic!("kpeek pahole {name}: {e}"));
    String::from_utf8(out).expect("UTF-8")
}

fn compare_all(version: &str, pahole_args: &[&str], opts: &PaholeOptions, names: &[&str]) {
    let path = vmlinux(version);
    let di = KernelDebugInfo::open(&path).expect("vmlinux opens");
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in names {
        let Some(want) = pahole(&path, pahole_args, name) else {
            continue;
        };
        compared += 1;
        let got = kpeek_pahole_text(&di, name, opts);
        if got != want {
            failures.push(format!("{name}: {}", common::first_difference(&want, &got)));
        }
    }
    assert!(compared > 0, "pahole printed nothing for any struct");
    assert!(
        failures.is_empty(),
        "Linux {version}: {} of {compared} differ from pahole:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pahole_identical_linux_6_1() {
    compare_all("6.1", &[], &PaholeOptions::default(), STRUCTS);
}

#[test]
fn pahole_identical_linux_6_12() {
    compare_all("6.12", &[], &PaholeOptions::default(), STRUCTS);
}

#[test]
fn pahole_hex_identical() {
    let opts = PaholeOptions {
        hex: true,
        ..PaholeOptions::default()
    };
    let names = ["task_struct", "sk_buff", "page", "zone", "inode"];
    compare_all("6.1", &["--hex"], &opts, &names);
    compare_all("6.12", &["--hex"], &opts, &names);
}

#[test]
fn pahole_typedefs_enums_and_unions() {
    let names = ["atomic_t", "spinlock_t", "pid_type", "sigval", "pgprot_t"];
    compare_all("6.1", &[], &PaholeOptions::default(), &names);
}

/// A member line as pahole printed it: name, offset, size, bitfield width.
type ParsedMember = (String, u64, u64, Option<u32>);

/// Parses pahole's member lines, `TYPE NAME[:BITS]; /* OFFSET[:BIT] SIZE */`,
/// at any depth: members of anonymous structs and unions keep their own
/// name (C reaches them directly), members of a named inline struct get
/// its name as a prefix (`headers.csum`).
fn all_members(text: &str) -> Vec<ParsedMember> {
    let mut stack: Vec<Vec<ParsedMember>> = vec![Vec::new()];
    for line in text.lines().skip(1) {
        let rest = line.trim_start_matches('\t');
        if rest.starts_with('/') || rest.is_empty() {
            continue;
        }
        if rest.ends_with('{') {
            stack.push(Vec::new());
            continue;
        }
        let (decl, comment) = rest.split_once("/*").unwrap_or((rest, ""));
        if let Some(close) = decl.strip_prefix('}') {
            if stack.len() == 1 {
                break; // the end of the outermost type
            }
            let Some(inner) = stack.pop() else { break };
            let Some(parent) = stack.last_mut() else {
                break;
            };
            let mut name = close.trim().trim_end_matches(';').to_string();
            while let Some(i) = name.find("__attribute__") {
                // Remove `__attribute__((...))`, parentheses balanced.
                let mut depth = 0;
                let mut end = name.len();
                for (j, c) in name[i..].char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                name.replace_range(i..end, "");
            }
            let name = name.trim();
            for (n, o, sz, b) in inner {
                let n = if name.is_empty() {
                    n
                } else {
                    format!("{name}.{n}")
                };
                parent.push((n, o, sz, b));
            }
            continue;
        }
        let decl = decl.trim_end().trim_end_matches(';');
        if decl.contains('(') {
            continue;
        }
        let name_part = decl.rsplit([' ', '*']).next().unwrap_or("");
        let (name, bits) = match name_part.split_once(':') {
            Some((n, b)) => (n, b.parse::<u32>().ok()),
            None => (name_part, None),
        };
        let name = name.split('[').next().unwrap_or("").to_string();
        let nums: Vec<&str> = comment
            .trim_end_matches("*/")
            .split([' ', ':'])
            .filter(|s| !s.is_empty())
            .collect();
        let parse = |s: &str| s.parse::<u64>().ok();
        let (offset, size) = match (bits, nums.as_slice()) {
            (None, [o, s]) => (parse(o), parse(s)),
            (Some(_), [o, _, s]) => (parse(o), parse(s)),
            _ => continue,
        };
        if let (Some(o), Some(s), false, Some(top)) =
            (offset, size, name.is_empty(), stack.last_mut())
        {
            top.push((name, o, s, bits));
        }
    }
    stack.into_iter().next().unwrap_or_default()
}

#[test]
fn member_offsets_agree_with_pahole() {
    for version in ["6.1", "6.12"] {
        let path = vmlinux(version);
        let di = KernelDebugInfo::open(&path).expect("vmlinux opens");
        for name in STRUCTS {
            let mut out = Vec::new();
            render_pahole(
                &di,
                &[name.to_string()],
                &PaholeOptions::default(),
                &mut out,
            )
            .expect("renders");
            let text = String::from_utf8(out).expect("UTF-8");
            let members = all_members(&text);
            assert!(!members.is_empty(), "{name}: parsed no members");
            let mut seen = std::collections::HashSet::new();
            for (member, offset, size, bits) in members {
                // Union alternatives can repeat a name; C finds the first.
                if !seen.insert(member.clone()) {
                    continue;
                }
                let m = di
                    .member(name, &member)
                    .unwrap_or_else(|e| panic!("{version} {name}.{member}: {e}"));
                assert_eq!(
                    (m.offset, m.size, m.bit_size),
                    (offset, size, bits),
                    "{version} {name}.{member}"
                );
            }
        }
    }
}

#[test]
fn debug_info_api_on_linux_6_1() {
    let path = vmlinux("6.1");
    let di = KernelDebugInfo::open(&path).expect("vmlinux opens");

    assert_eq!(di.type_size("struct task_struct").unwrap(), 6528);
    assert_eq!(di.type_size("task_struct").unwrap(), 6528);
    assert_eq!(di.type_size("list_head").unwrap(), 16);
    assert_eq!(di.type_size("atomic_t").unwrap(), 4);
    assert_eq!(di.type_size("long unsigned int").unwrap(), 8);

    let tasks = di.member("task_struct", "tasks").unwrap();
    assert_eq!((tasks.offset, tasks.size), (736, 16));
    assert_eq!(tasks.type_name, "struct list_head");
    assert_eq!(
        di.member("task_struct", "comm").unwrap().type_name,
        "char[16]"
    );
    let signal = di.member("task_struct", "signal").unwrap();
    assert_eq!(
        (signal.offset, signal.type_name.as_str()),
        (1496, "struct signal_struct *")
    );
    // Nested paths add up; anonymous unions are transparent.
    let se = di.member("task_struct", "se").unwrap();
    let vruntime = di.member("task_struct", "se.vruntime").unwrap();
    assert_eq!(vruntime.offset, se.offset + 80);
    let sp = di.member("task_struct", "thread.sp").unwrap();
    assert_eq!(
        sp.offset,
        di.member("task_struct", "thread").unwrap().offset + 24
    );
    assert_eq!(
        di.member("task_struct", "thread_info.flags")
            .unwrap()
            .offset,
        0
    );
    assert_eq!(di.member("page", "lru").unwrap().offset, 8);
    assert_eq!(di.member("page", "_mapcount").unwrap().offset, 48);
    assert_eq!(
        di.member("task_struct", "comm[3]").unwrap().offset,
        1448 + 3
    );
    // Bitfields: storage unit offset and size, bit position within it.
    let hot = di.member("task_struct", "sched_task_hot").unwrap();
    assert_eq!(
        (hot.offset, hot.size, hot.bit_offset, hot.bit_size),
        (884, 4, Some(3), Some(1))
    );

    assert!(di.has_member("task_struct", "__state"));
    assert!(!di.has_member("task_struct", "state"));
    let err = di.member("task_struct", "no_such_member").unwrap_err();
    assert_eq!(err.code(), "member_not_found");
    let err = di.type_size("task_strct").unwrap_err();
    assert_eq!(err.code(), "type_not_found");
    assert!(err.to_string().contains("task_struct"), "{err}");

    assert_eq!(di.enumerator("PIDTYPE_PID"), Some(0));
    assert_eq!(di.enumerator("PIDTYPE_MAX"), Some(4));
    assert_eq!(di.enumerator("NO_SUCH_ENUMERATOR_XYZ"), None);

    let build_id = di.build_id().expect("vmlinux has a build ID");
    assert_eq!(build_id.len(), 20);

    let init_task = di.symbol("init_task").expect("init_task");
    assert!(init_task.size >= 6528, "{init_task:?}");
    let (sym, off) = di.symbol_at(LinkAddr(init_task.addr.get() + 100)).unwrap();
    assert_eq!((sym.name.as_str(), off), ("init_task", 100));
    assert!(di.is_percpu_symbol("runqueues"));
    assert!(!di.is_percpu_symbol("init_task"));
    // Assembly entry points are STT_NOTYPE, and still name their code.
    let rff = di.symbol("ret_from_fork").expect("ret_from_fork");
    let (sym, off) = di.symbol_at(LinkAddr(rff.addr.get() + 5)).unwrap();
    assert_eq!((sym.name.as_str(), off), ("ret_from_fork", 5));

    let banner = di.symbol("linux_banner").expect("linux_banner");
    let bytes = di.section_data(banner.addr, 14).expect("banner bytes");
    assert_eq!(bytes, b"Linux version ");
}

#[test]
fn debug_info_api_on_linux_6_12() {
    let path = vmlinux("6.12");
    let di = KernelDebugInfo::open(&path).expect("vmlinux opens");
    assert_eq!(di.type_size("task_struct").unwrap(), 6592);
    assert_eq!(di.member("task_struct", "tasks").unwrap().offset, 816);
    assert_eq!(di.member("task_struct", "pid").unwrap().offset, 1024);
    // DWARF 4 bitfields (DW_AT_bit_offset from the MSB).
    let m = di.member("sk_buff", "pp_recycle").unwrap();
    assert_eq!(m.bit_size, Some(1));
    assert!(di.is_percpu_symbol("runqueues"));
    assert_eq!(di.enumerator("PIDTYPE_TGID"), Some(1));
}

#[test]
fn cli_prints_like_pahole_and_fails_clearly() {
    let path = vmlinux("6.1");
    let out = common::kpeek_command()
        .args(["pahole", "--vmlinux"])
        .arg(&path)
        .args(["-C", "list_head,hlist_node"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("struct list_head {\n"), "{text}");
    assert!(text.contains("};\nstruct hlist_node {\n"), "{text}");
    assert_eq!(Some(text), pahole(&path, &[], "list_head,hlist_node"));

    let out = common::kpeek_command()
        .args(["pahole", "--vmlinux"])
        .arg(&path)
        .arg("task_strcut")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("task_strcut") && err.contains("task_struct"),
        "{err}"
    );

    let out = common::kpeek_command()
        .args(["pahole", "--vmlinux", "/etc/hostname", "task_struct"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not an ELF file"), "{err}");
}

#[test]
fn cli_json_layout() {
    let path = vmlinux("6.1");
    let out = common::kpeek_command()
        .args(["pahole", "--format", "json", "--vmlinux"])
        .arg(&path)
        .arg("task_struct")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let layout = &v["layouts"][0];
    assert_eq!(layout["name"], "task_struct");
    assert_eq!(layout["size"], 6528);
    assert_eq!(layout["cachelines"], 102);
    let members = layout["members"].as_array().unwrap();
    let tasks = members.iter().find(|m| m["name"] == "tasks").unwrap();
    assert_eq!(tasks["offset"], 736);
    assert_eq!(tasks["type_name"], "struct list_head");
    assert_eq!(tasks["cacheline"], 11);
}

/// `objcopy --compress-debug-sections` output reads the same (zlib, zstd).
#[test]
fn compressed_debug_sections() {
    let path = vmlinux("6.12");
    for format in ["zlib", "zstd"] {
        let out = std::env::temp_dir().join(format!(
            "kpeek-test-{}-{format}.vmlinux",
            std::process::id()
        ));
        let status = Command::new(common::require_tool("objcopy"))
            .arg(format!("--compress-debug-sections={format}"))
            .arg(&path)
            .arg(&out)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "objcopy --compress-debug-sections={format} failed (binutils 2.40 or later compresses with zstd)"
        );
        let plain = KernelDebugInfo::open(&path).expect("vmlinux opens");
        let packed = KernelDebugInfo::open(&out).expect("compressed vmlinux opens");
        for name in ["task_struct", "sk_buff", "printk_ringbuffer"] {
            let opts = PaholeOptions::default();
            assert_eq!(
                kpeek_pahole_text(&packed, name, &opts),
                kpeek_pahole_text(&plain, name, &opts),
                "{format} {name}"
            );
        }
        std::fs::remove_file(&out).ok();
    }
}

/// An unlinked `vmlinux.o` (ET_REL) holds zeros where `.rela.debug_*`
/// point; with the relocations applied it reads like the vmlinux. The
/// fixtures do not ship a vmlinux.o (a kernel build tree has one):
/// `KPEEK_TEST_VMLINUX_O=path/vmlinux.o cargo nextest run --run-ignored all`,
/// with its vmlinux beside it.
#[test]
#[ignore = "needs a vmlinux.o, which the fixtures do not ship: set KPEEK_TEST_VMLINUX_O and pass --run-ignored all"]
fn relocatable_object_gets_relocated() {
    let object =
        PathBuf::from(std::env::var_os("KPEEK_TEST_VMLINUX_O").expect("KPEEK_TEST_VMLINUX_O"));
    let path = object.with_file_name("vmlinux");
    let linked = KernelDebugInfo::open(&path).expect("vmlinux opens");
    let unlinked = KernelDebugInfo::open(&object).expect("vmlinux.o opens");
    let opts = PaholeOptions::default();
    for name in ["task_struct", "list_head"] {
        assert_eq!(
            kpeek_pahole_text(&unlinked, name, &opts),
            kpeek_pahole_text(&linked, name, &opts),
            "{name}"
        );
    }
}

/// The saved `pahole -F dwarf VMLINUX` (no `-C`: every struct and union).
fn pahole_all_oracle(version: &str) -> String {
    let path = common::Fixture::load(&format!("linux-{version}")).oracle_path("pahole-all.txt.zst");
    let packed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = zstd::stream::decode_all(&packed[..]).expect("the oracle decompresses");
    String::from_utf8(text).expect("pahole prints UTF-8")
}

/// The `struct NAME` / `union NAME` headers of a whole listing, in order.
fn headers(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| (l.starts_with("struct ") || l.starts_with("union ")) && l.ends_with(" {"))
        .map(|l| l.trim_end_matches(" {"))
        .collect()
}

/// Where two whole listings first differ: the line, and the struct it is in.
fn first_difference_all(want: &str, got: &str) -> String {
    let line = want
        .lines()
        .zip(got.lines())
        .position(|(w, g)| w != g)
        .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
    let within = |text: &str| {
        text.lines()
            .take(line + 1)
            .filter(|l| (l.starts_with("struct ") || l.starts_with("union ")) && l.ends_with(" {"))
            .count()
    };
    let (want_headers, got_headers) = (headers(want), headers(got));
    let (nw, ng) = (within(want), within(got));
    format!(
        "{}\n  in pahole's struct #{nw} ({:?}), kpeek's struct #{ng} ({:?}); \
         pahole prints {} structs, kpeek {}",
        common::first_difference(want, got),
        want_headers.get(nw.wrapping_sub(1)),
        got_headers.get(ng.wrapping_sub(1)),
        want_headers.len(),
        got_headers.len(),
    )
}

fn all_identical(version: &str) {
    let path = vmlinux(version);
    let want = pahole_all_oracle(version);
    let di = KernelDebugInfo::open(&path).expect("vmlinux opens");
    let mut out = Vec::new();
    render_pahole_all(&di, &PaholeOptions::default(), &mut out).expect("kpeek pahole --all");
    let got = String::from_utf8(out).expect("UTF-8");
    assert!(
        got == want,
        "Linux {version}: kpeek pahole --all differs from pahole -F dwarf: {}",
        first_difference_all(&want, &got)
    );
}

/// `kpeek pahole --all` is byte for byte the saved `pahole -F dwarf
/// VMLINUX`: the same structs and unions (named, defined, top-level, no
/// repeats), in the same order.
#[test]
fn pahole_all_identical_linux_6_1() {
    all_identical("6.1");
}

#[test]
fn pahole_all_identical_linux_6_12() {
    all_identical("6.12");
}

/// `--all --hex` through the binary, against pahole run now.
#[test]
fn cli_all_hex_like_pahole() {
    let path = vmlinux("6.12");
    let pahole = common::require_tool("pahole");
    let out = common::kpeek_command()
        .args(["pahole", "--all", "--hex", "--vmlinux"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let want = Command::new(pahole)
        .args(["-F", "dwarf", "--hex"])
        .arg(&path)
        .output()
        .expect("pahole runs");
    let want = String::from_utf8(want.stdout).expect("pahole prints UTF-8");
    assert!(
        got == want,
        "kpeek pahole --all --hex differs: {}",
        first_difference_all(&want, &got)
    );
}

/// `--all --format json`: one layout per struct pahole prints, in its order.
#[test]
fn cli_all_json_in_pahole_order() {
    let path = vmlinux("6.1");
    let out = common::kpeek_command()
        .args(["pahole", "--all", "--format", "json", "--vmlinux"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let got: Vec<String> = v["layouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["kind"].as_str().unwrap(),
                l["name"].as_str().unwrap()
            )
        })
        .collect();
    let oracle = pahole_all_oracle("6.1");
    let want = headers(&oracle);
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(g, w)| g == w));
    let task = v["layouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "task_struct")
        .unwrap();
    assert_eq!(task["size"], 6528);

    // --all takes no names.
    let out = common::kpeek_command()
        .args(["pahole", "--all", "--vmlinux"])
        .arg(&path)
        .arg("task_struct")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The persistent index: a first run that indexes everything writes
/// `<build-id>.idx`; later runs load it and print the same layouts; a
/// damaged or foreign file is detected, ignored and rewritten.
#[test]
fn index_cache_is_written_reused_and_rebuilt_when_damaged() {
    let path = vmlinux("6.12");
    let dir = std::env::temp_dir().join(format!("kpeek-index-cache-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let names = STRUCTS.join(",");
    let run = |args: &[&str]| {
        common::kpeek_command()
            .env("KPEEK_CACHE_DIR", &dir)
            .args(["pahole", "--vmlinux"])
            .arg(&path)
            .args(args)
            .output()
            .expect("kpeek runs")
    };
    // A name that does not exist makes kpeek index every unit (and suggest).
    let missing = run(&["no_such_struct_anywhere"]);
    assert_eq!(missing.status.code(), Some(1));
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the cache directory was created")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let build_id: String = kpeek::debuginfo::KernelDebugInfo::open(&path)
        .expect("vmlinux")
        .build_id()
        .expect("build id")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        file.file_name().and_then(|f| f.to_str()),
        Some(format!("{build_id}.idx").as_str())
    );
    let good = std::fs::read(file).expect("cache file");

    // From the cache: the same layouts as pahole itself prints.
    let cached = run(&["-C", &names]);
    assert!(cached.status.success());
    let mut want = String::new();
    for name in STRUCTS {
        want.push_str(&pahole(&path, &[], name).expect("pahole oracle"));
    }
    assert_eq!(String::from_utf8_lossy(&cached.stdout), want);

    // Damaged three ways: each is ignored, the output stays right, and the
    // file is rebuilt into one that loads again.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x5a;
    let mut foreign = good.clone();
    foreign[30] ^= 0xff; // inside the stored build ID
    for damaged in [good[..good.len() / 3].to_vec(), flipped, foreign] {
        std::fs::write(file, &damaged).expect("damage the cache");
        let out = run(&["-C", &names]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        let rebuilt = std::fs::read(file).expect("rebuilt cache");
        assert_ne!(rebuilt, damaged, "the damaged cache was not rewritten");
        assert_eq!(
            rebuilt.len(),
            good.len(),
            "the rebuilt cache differs in size"
        );
    }
    // KPEEK_CACHE=off writes nothing.
    std::fs::remove_dir_all(&dir).ok();
    let off = common::kpeek_command()
        .env("KPEEK_CACHE_DIR", &dir)
        .env("KPEEK_CACHE", "off")
        .args(["pahole", "--vmlinux"])
        .arg(&path)
        .arg("no_such_struct_anywhere")
        .output()
        .expect("kpeek runs");
    assert_eq!(off.status.code(), Some(1));
    assert!(!dir.exists(), "KPEEK_CACHE=off wrote a cache");
}
