//! `kpeek bt` against oracles kpeek did not write: the guest's own
//! `/proc/PID/stack` recorded just before each dump, the guest's
//! `/proc/kallsyms`, and binutils' `addr2line` on the same vmlinux.
//!
//! The comparison rule (docs/TESTING.md): a task's stack is compared when
//! the guest listed it, it was not on a CPU in the dump, and it did not run
//! between the listing and the dump — its voluntary and involuntary
//! context-switch counts in the dump (`nvcsw`, `nivcsw`) equal the ones
//! its `/proc/PID/status` showed. Every such task must match line for line.

mod common;

use std::process::Command;

use common::{Fixture, Truth};
use kpeek::addr::LinkAddr;
use kpeek::kernel::info::CpuStates;
use kpeek::kernel::stack::Unwinder;
use kpeek::kernel::{task_list, OpenOptions, Program};

fn open(fixture: &Fixture, path: &std::path::Path) -> Program {
    Program::open(&fixture.vmlinux(), path, &OpenOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compare every eligible task of one dump; returns (compared, with a
/// module frame).
fn compare_dump(fixture: &Fixture, truth: &Truth, path: &std::path::Path) -> (usize, usize) {
    let prog = open(fixture, path);
    let info = CpuStates::gather(&prog);
    let regs = info.cpus.iter().map(|c| (c.cpu, c.registers)).collect();
    let unwinder = Unwinder::new(&prog, regs).expect("unwinder");
    assert!(unwinder.notices.is_empty(), "{:?}", unwinder.notices);
    let list = task_list(&prog).expect("tasks");
    let common::StackComparison {
        compared,
        ran,
        with_module,
        mismatches,
    } = common::compare_proc_stacks(&unwinder, &list.tasks, truth);
    let mismatches: Vec<String> = mismatches
        .iter()
        .map(|(pid, comm, got, want)| {
            format!("pid {pid} {comm}:\n  kpeek: {got:?}\n  guest: {want:?}")
        })
        .collect();
    let what = path.display();
    assert!(
        mismatches.is_empty(),
        "{what}: {} of {compared} stacks differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Nearly every task slept through the dump: the rule excludes only the few that ran.
    assert!(compared >= 300, "{what}: only {compared} tasks compared");
    assert!(
        ran <= 10,
        "{what}: {ran} tasks ran between the listing and the dump"
    );
    eprintln!("{what}: {compared} stacks identical to /proc/PID/stack, {ran} tasks ran in between");
    (compared, with_module)
}

#[test]
fn proc_style_equals_the_guests_proc_pid_stack() {
    let mut total = 0;
    for fixture in Fixture::all() {
        for name in fixture.boot_names() {
            let boot = fixture.boot(&name);
            let truth = boot.truth();
            for (path, _) in boot.dumps() {
                let (n, module) = compare_dump(&fixture, &truth, &path);
                // The fixture module's kthread sleeps in module code.
                assert!(
                    module >= 1,
                    "{}: no stack through the module",
                    path.display()
                );
                total += n;
            }
        }
    }
    eprintln!("{total} stacks compared in all");
}

/// The kernel's kallsyms view of the symbol table: the name and size
/// `/proc/PID/stack` prints must be kallsyms', whose sizes run to the next
/// symbol (padding included), not the ELF sizes.
#[test]
fn kallsyms_view_of_the_vmlinux_equals_proc_kallsyms() {
    for fixture in Fixture::all() {
        let name = fixture.boot_names().into_iter().next().expect("a boot");
        let boot = fixture.boot(&name);
        let truth = boot.truth();
        let offset = boot.kaslr_offset();
        let debug = kpeek::debuginfo::KernelDebugInfo::open(&fixture.vmlinux()).expect("vmlinux");
        // Core-kernel symbols (no module), in the guest's order.
        let mut syms: Vec<(u64, char, String)> = truth.files["/proc/kallsyms"]
            .lines()
            .filter(|l| !l.contains('['))
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?.chars().next()?;
                Some((addr, kind, it.next()?.to_owned()))
            })
            .filter(|s| s.0 >= 0xffff_ffff_8000_0000)
            .collect();
        syms.sort_by_key(|s| s.0);
        let (mut checked, mut bad) = (0, Vec::new());
        for (i, (addr, kind, name)) in syms.iter().enumerate() {
            if !matches!(kind, 't' | 'T') {
                continue;
            }
            // The first symbol listed at this address is the one %pB names.
            if i > 0 && syms[i - 1].0 == *addr {
                continue;
            }
            let Some(next) = syms[i..].iter().map(|s| s.0).find(|&a| a > *addr) else {
                continue;
            };
            checked += 1;
            match debug.kallsyms_at(LinkAddr(addr - offset)) {
                Some((sym, 0)) if sym.name == *name && sym.size == next - addr => {}
                other => bad.push(format!(
                    "{name} at {addr:#x} size {:#x}: kpeek {other:?}",
                    next - addr
                )),
            }
        }
        assert!(checked > 5000, "{}: only {checked} symbols", fixture.name);
        assert!(
            bad.is_empty(),
            "{}: {} of {checked} differ:\n{}",
            fixture.name,
            bad.len(),
            bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

/// `kpeek ARGS`: its standard output as JSON; it must succeed.
fn run_kpeek_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = common::kpeek_command()
        .args(args)
        .output()
        .expect("run kpeek");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// binutils' addr2line: (function, file:line) for each frame, innermost
/// (inlined) first.
fn addr2line(vmlinux: &std::path::Path, addr: u64) -> Vec<(String, String)> {
    let out = Command::new(common::require_tool("addr2line"))
        .args(["-i", "-f", "-e"])
        .arg(vmlinux)
        .arg(format!("{addr:#x}"))
        .output()
        .expect("addr2line (binutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|c| {
            let place = c.get(1).copied().unwrap_or("");
            // "path:line (discriminator N)" → "path:line"
            let place = place.split(" (").next().unwrap_or(place);
            (c[0].to_owned(), place.to_owned())
        })
        .collect()
}

#[test]
fn the_panicking_cpu_shows_the_panic_path_with_source_lines() {
    for fixture in Fixture::all() {
        let boot = fixture.boot("kdump");
        let vmlinux = fixture.vmlinux();
        let offset = boot.kaslr_offset();
        for (path, _) in boot.dumps() {
            let report = run_kpeek_json(&[
                "bt".as_ref(),
                "--cpus".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                "--vmlinux".as_ref(),
                vmlinux.as_os_str(),
                "--core".as_ref(),
                path.as_os_str(),
            ]);
            let what = path.display();
            let cpus = report["cpus"].as_array().expect("cpus");
            assert_eq!(cpus.len(), 2, "{what}");
            let first = &cpus[0];
            assert_eq!(
                first["panicked"], true,
                "{what}: the panicking CPU comes first"
            );
            let frames = first["frames"].as_array().expect("frames");
            let names: Vec<&str> = frames
                .iter()
                .filter_map(|f| f["function"].as_str())
                .collect();
            for want in [
                "__crash_kexec",
                "panic",
                "sysrq_handle_crash",
                "__handle_sysrq",
                "write_sysrq_trigger",
                "ksys_write",
            ] {
                assert!(names.contains(&want), "{what}: no {want} in {names:?}");
            }
            assert_eq!(first["end"]["reason"], "user", "{what}: {}", first["end"]);
            // Source lines and inlined frames agree with binutils' addr2line.
            let mut checked = 0;
            let mut i = 0;
            while i < frames.len() {
                let pc = u64::from_str_radix(
                    frames[i]["pc"]
                        .as_str()
                        .expect("pc")
                        .trim_start_matches("0x"),
                    16,
                )
                .expect("hex pc");
                let kind = frames[i]["kind"].as_str().unwrap_or("");
                let look = if kind == "start" || kind == "regs" || kind == "iret" {
                    pc
                } else {
                    pc - 1
                };
                let oracle = addr2line(&vmlinux, look - offset);
                let group: Vec<&serde_json::Value> =
                    frames[i..].iter().take(oracle.len()).collect();
                for (got, (func, place)) in group.iter().zip(&oracle) {
                    let file = got["file"].as_str().unwrap_or("?");
                    let line = got["line"].as_u64().unwrap_or(0);
                    assert!(
                        place.ends_with(&format!("{file}:{line}")),
                        "{what}: frame at {pc:#x}: kpeek {file}:{line}, addr2line {place}"
                    );
                    if got["inlined"] == true {
                        assert_eq!(
                            got["function"].as_str(),
                            Some(func.as_str()),
                            "{what}: {pc:#x}"
                        );
                    }
                }
                checked += 1;
                i += oracle.len().max(1);
            }
            assert!(checked >= 8, "{what}: {checked} frames");
        }
    }
}

#[test]
fn bt_of_a_pid_and_bad_pids() {
    let fixture = Fixture::load("linux-6.12");
    let boot = fixture.boot("qemu-vmcoreinfo");
    let (path, _) = boot.dumps().into_iter().next().expect("a dump");
    let vmlinux = fixture.vmlinux();
    let run = |args: &[&str]| {
        common::kpeek_command()
            .args(args)
            .arg("--vmlinux")
            .arg(&vmlinux)
            .arg("--core")
            .arg(&path)
            .output()
            .expect("run kpeek")
    };
    // pid 1 (init) sleeps in a system call: its stack ends in user space.
    let out = run(&["bt", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("PID: 1  TGID: 1  COMM: \"init\""),
        "{text}"
    );
    assert!(text.contains("entry_SYSCALL_64"), "{text}");
    assert!(text.contains("-- user space: pc "), "{text}");
    // The proc style for one task is exactly the guest's file.
    let truth = boot.truth();
    let want = truth
        .tasks
        .iter()
        .find(|t| t.tid == 1)
        .and_then(|t| t.stack.clone())
        .expect("init's stack");
    let out = run(&["bt", "--style", "proc", "1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // A pid that does not exist: a clear error, non-zero exit.
    let out = run(&["bt", "4000000"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no task with pid 4000000"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fedora-style debuginfo has no ORC sections (here: renamed away, as
/// objcopy will not drop sections that symbols point into): the unwinder then reads the
/// tables the kernel keeps in its own memory (`__start_orc_unwind_ip` ...),
/// and the stacks are the same.
#[test]
fn orc_tables_from_the_dump_when_the_vmlinux_has_none() {
    let fixture = Fixture::load("linux-6.1");
    let boot = fixture.boot("kdump");
    let truth = boot.truth();
    let (dump, _) = boot.dumps().into_iter().next().expect("a dump");
    let stripped = std::env::temp_dir().join(format!("kpeek-no-orc-{}", std::process::id()));
    let status = Command::new(common::require_tool("objcopy"))
        .args([
            "--rename-section",
            ".orc_unwind=.kpeek_gone",
            "--rename-section",
            ".orc_unwind_ip=.kpeek_gone_ip",
        ])
        .arg(fixture.vmlinux())
        .arg(&stripped)
        .status()
        .expect("objcopy (binutils)");
    assert!(status.success());
    let debug = kpeek::debuginfo::KernelDebugInfo::open(&stripped).expect("stripped vmlinux");
    assert!(
        debug.section(".orc_unwind").is_none(),
        "objcopy left .orc_unwind"
    );
    let prog = Program::from_parts(
        debug,
        std::sync::Arc::new(kpeek::dump::Dump::open(&dump).expect("dump")),
        &OpenOptions::default(),
    )
    .expect("program");
    let unwinder = Unwinder::new(&prog, Default::default()).expect("unwinder from memory");
    let list = task_list(&prog).expect("tasks");
    let mut same = 0;
    for task in list.tasks.iter().filter(|t| t.pid > 0 && !t.current) {
        let Some(want) = truth.tasks.iter().find(|t| t.tid == i64::from(task.pid)) else {
            continue;
        };
        if task.switches != common::switches(want) {
            continue;
        }
        let got = unwinder.proc_stack(&unwinder.task_stack(task));
        let want: Vec<&str> = want.stack.as_deref().unwrap_or("").lines().collect();
        assert_eq!(got, want, "pid {} {}", task.pid, task.comm);
        same += 1;
    }
    std::fs::remove_file(&stripped).ok();
    assert!(same >= 300, "{same} stacks compared");
}

/// With no vmlinux at all (types from the dump's BTF, symbols from its
/// kallsyms, ORC from its memory), `/proc`-style stacks are the same as
/// with the vmlinux.
#[test]
fn proc_stacks_without_a_vmlinux_equal_those_with_it() {
    for fixture in Fixture::all() {
        let boot = fixture.boot("kdump");
        let (dump, _) = boot.dumps().into_iter().next().expect("a dump");
        let run = |with_vmlinux: bool| {
            let mut cmd = common::kpeek_command();
            cmd.args(["bt", "--all", "--style", "proc", "--core"])
                .arg(&dump);
            if with_vmlinux {
                cmd.arg("--vmlinux").arg(fixture.vmlinux());
            }
            let out = cmd.output().expect("run kpeek");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).expect("utf-8")
        };
        let (with, without) = (run(true), run(false));
        assert!(with.lines().count() > 1000, "{}", fixture.name);
        assert_eq!(with, without, "{}", fixture.name);
    }
}
