//! The distro-kernel matrix: Debian's own kernels (booted with the fixture
//! workload by `benches/matrix.sh`, dumped with and without `-device
//! vmcoreinfo`) against the guest's own `/proc`, with the `-dbg` vmlinux
//! and with none.
//!
//! Nothing is downloaded here: the test covers whatever kernels
//! `benches/matrix.sh` cached (in `$KPEEK_MATRIX_CACHE`, else
//! `$XDG_CACHE_HOME/kpeek-matrix`, else `~/.cache/kpeek-matrix`) and says
//! which. With none cached it says so and passes, unless
//! `KPEEK_MATRIX_REQUIRE=1` (see docs/TESTING.md). It writes the table of
//! results to `target/matrix/table.md`.
//!
//! The rules are those of tests/ps.rs and tests/bt.rs (docs/TESTING.md):
//! every user task identical (pid, tgid, ppid, comm, state), kernel threads
//! by pid, tgid, ppid and comm prefix, at least 90% of their states; a
//! task's stack compared when it was not on a CPU and its context-switch
//! counts equal the ones its `/proc/PID/status` showed.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::Truth;
use kpeek::kernel::info::CpuStates;
use kpeek::kernel::kallsyms::{Kallsyms, Location};
use kpeek::kernel::stack::Unwinder;
use kpeek::kernel::{task_list, OpenOptions, Program, Task};

fn cache_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KPEEK_MATRIX_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("kpeek-matrix"))
}

/// Kernels with a vmlinux and at least one dump with its truth.
fn cached_kernels() -> Vec<(String, PathBuf)> {
    let Some(root) = cache_root() else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.join("vmlinux").is_file()
                && ["vmcoreinfo", "plain"]
                    .iter()
                    .any(|b| p.join(b).join("vmcore.elf").is_file())
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, p)
        })
        .collect();
    out.sort();
    out
}

/// `ps --threads` against the truth: (tasks right, tasks in the truth,
/// tasks allowed to be gone, problems).
fn check_ps(truth: &Truth, prog: &Program) -> (usize, usize, usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut gone = 0;
    let list = match task_list(prog) {
        Ok(l) => l,
        Err(e) => return (0, truth.tasks.len(), 0, vec![format!("task walk: {e}")]),
    };
    problems.extend(list.warnings.iter().map(|w| format!("warning: {w:?}")));
    let by_pid: HashMap<i32, &Task> = list
        .tasks
        .iter()
        .filter(|t| t.pid != 0)
        .map(|t| (t.pid, t))
        .collect();
    let (mut right, mut kstates, mut ksame) = (0, 0, 0);
    for want in &truth.tasks {
        let Some(got) = by_pid.get(&(want.tid as i32)) else {
            // PREEMPT_RT threads every interrupt handler: ttyS1's, which
            // the truth recorder wrote to, lives only while it holds the
            // port open (request_irq on open, free_irq on the last close),
            // so it is in the truth and gone by the dump.
            let ttys1_irq =
                want.is_kthread() && want.comm.starts_with("irq/") && want.comm.ends_with("-ttyS1");
            if ttys1_irq {
                gone += 1;
            } else {
                problems.push(format!("missing pid {} {}", want.tid, want.comm));
            }
            continue;
        };
        let same_ids = got.tgid as i64 == want.tgid
            && got.ppid as i64 == want.ppid()
            && got.kthread == want.is_kthread();
        let ok = if want.is_kthread() {
            kstates += 1;
            ksame += usize::from(got.state == want.state());
            same_ids && want.comm.starts_with(&got.comm)
        } else {
            same_ids && got.comm == want.comm && got.state == want.state()
        };
        if ok {
            right += 1;
        } else {
            problems.push(format!(
                "pid {}: kpeek {} {} {} {:?} {} vs guest {} {} {:?} {}",
                want.tid,
                got.tgid,
                got.ppid,
                got.kthread,
                got.comm,
                got.state,
                want.tgid,
                want.ppid(),
                want.comm,
                want.state()
            ));
        }
    }
    if ksame * 10 < kstates * 9 {
        problems.push(format!("{ksame}/{kstates} kernel-thread states"));
    }
    let truth_pids: Vec<i64> = truth.tasks.iter().map(|t| t.tid).collect();
    let extra: Vec<String> = list
        .tasks
        .iter()
        .filter(|t| {
            t.pid != 0
                && !truth_pids.contains(&(t.pid as i64))
                && !truth.capturers.contains(&(t.pid as i64))
        })
        .map(|t| format!("{} {} kthread={}", t.pid, t.comm, t.kthread))
        .collect();
    if extra.len() > 3 || extra.iter().any(|e| e.ends_with("false")) {
        problems.push(format!("unexpected tasks {extra:?}"));
    }
    (right, truth.tasks.len(), gone, problems)
}

/// `bt --all --style proc` against /proc/PID/stack: (equal, compared, ran, problems).
fn check_bt(truth: &Truth, prog: &Program) -> (usize, usize, usize, Vec<String>) {
    let info = CpuStates::gather(prog);
    let regs = info.cpus.iter().map(|c| (c.cpu, c.registers)).collect();
    let unwinder = match Unwinder::new(prog, regs) {
        Ok(u) => u,
        Err(e) => return (0, 0, 0, vec![format!("unwinder: {e}")]),
    };
    let mut problems: Vec<String> = unwinder
        .notices
        .iter()
        .map(|n| format!("notice: {n}"))
        .collect();
    let list = match task_list(prog) {
        Ok(l) => l,
        Err(e) => return (0, 0, 0, vec![format!("task walk: {e}")]),
    };
    let c = common::compare_proc_stacks(&unwinder, &list.tasks, truth);
    for (pid, comm, got, want) in c.mismatches.iter().take(20) {
        problems.push(format!("pid {pid} {comm}: kpeek {got:?} guest {want:?}"));
    }
    let (equal, compared, ran) = (c.compared - c.mismatches.len(), c.compared, c.ran);
    (equal, compared, ran, problems)
}

/// The kernel's kallsyms tables, found as kpeek finds them without a
/// vmlinux (through VMCOREINFO where it names them, else by shape; the
/// vmlinux only gives `_text`), against the guest's /proc/kallsyms:
/// (identical, in /proc/kallsyms, how found, problems).
fn check_kallsyms(truth: &Truth, prog: &Program) -> (usize, usize, &'static str, Vec<String>) {
    let want = truth.core_kallsyms();
    let read = |addr: u64, buf: &mut [u8]| prog.space.read(kpeek::addr::VirtAddr(addr), buf);
    let named = prog
        .notes
        .vmcoreinfo
        .as_ref()
        .and_then(Location::from_vmcoreinfo);
    let (how, ks) = match named {
        Some(loc) => ("VMCOREINFO", Kallsyms::read(&read, &loc).ok()),
        None => {
            let text = prog.symbol("_text").map(|a| a.0).unwrap_or(0);
            (
                "shape",
                Location::search(&read, text, text, 256 << 20).map(|(_, k)| k),
            )
        }
    };
    let Some(ks) = ks else {
        return (
            0,
            want.len(),
            how,
            vec![format!("kallsyms not found ({how})")],
        );
    };
    let got: Vec<(u64, char, String)> = ks
        .symbols()
        .iter()
        .map(|s| (s.addr, s.kind, s.name.clone()))
        .collect();
    let same = got.iter().zip(&want).filter(|(g, w)| g == w).count();
    let mut problems = Vec::new();
    if got.len() != want.len() || same != want.len() {
        problems.push(format!(
            "kallsyms: {same}/{} identical, {} decoded; first difference {:x?}",
            want.len(),
            got.len(),
            got.iter().zip(&want).find(|(g, w)| g != w)
        ));
    }
    (same, want.len(), how, problems)
}

/// The log as the guest's syslog had it (`<prio>[ts] text`, with
/// `[caller]` after the time where the kernel prints it):
/// the truth's lines are the first lines of kpeek's (the log went on
/// after the truth was recorded). Gives (lines equal, lines of the truth).
fn check_dmesg(truth: &Truth, prog: &Program) -> (usize, usize, Vec<String>) {
    let theirs: Vec<&str> = truth.dmesg.lines().collect();
    let log = match kpeek::kernel::printk::read_log(prog) {
        Ok(log) => log,
        Err(e) => return (0, theirs.len(), vec![format!("dmesg: {e}")]),
    };
    let mut text = Vec::new();
    // The syslog shows the caller only on kernels built with
    // CONFIG_PRINTK_CALLER (Debian's are not); the ring records it always.
    let opts = kpeek::render::dmesg::DmesgOptions {
        raw: true,
        caller: theirs.first().is_some_and(|l| l.contains("][")),
    };
    kpeek::render::dmesg::dmesg(&mut text, &log.entries, opts).expect("render");
    let text = String::from_utf8_lossy(&text);
    let ours: Vec<&str> = text.lines().collect();
    let same = theirs.iter().zip(&ours).take_while(|(a, b)| a == b).count();
    let mut problems = Vec::new();
    if same < theirs.len() {
        problems.push(format!(
            "dmesg: line {same} differs: {:?} vs {:?}",
            theirs.get(same),
            ours.get(same)
        ));
    }
    (same, theirs.len(), problems)
}

/// `lsmod --style proc` against the guest's /proc/modules, byte for byte.
fn check_lsmod(truth: &Truth, prog: &Program) -> (usize, Vec<String>) {
    let want = truth
        .files
        .get("/proc/modules")
        .cloned()
        .unwrap_or_default();
    let list = match kpeek::kernel::modules::for_each_module(prog) {
        Ok(list) => list,
        Err(e) => return (0, vec![format!("lsmod: {e}")]),
    };
    let mut out = Vec::new();
    kpeek::render::lsmod::proc_modules(&mut out, &list.modules).expect("render");
    let got = String::from_utf8_lossy(&out);
    let n = want.lines().count();
    if got == want {
        (n, Vec::new())
    } else {
        (n, vec![format!("lsmod:\n{got}\nvs /proc/modules:\n{want}")])
    }
}

#[test]
fn distro_kernels_equal_the_guests_proc() {
    let kernels = cached_kernels();
    if kernels.is_empty() {
        let msg = format!(
            "matrix: no distro kernels cached under {:?}: nothing covered (run benches/matrix.sh ABI)",
            cache_root()
        );
        assert!(std::env::var_os("KPEEK_MATRIX_REQUIRE").is_none(), "{msg}");
        eprintln!("{msg}");
        return;
    }
    let mut table = String::from(
        "| kernel | dump | vmlinux | open | `ps --threads` = /proc | `bt --all --style proc` = /proc/PID/stack | kallsyms = /proc/kallsyms | `dmesg --raw` = syslog | `lsmod --style proc` = /proc/modules |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for (abi, dir) in &kernels {
        for boot in ["vmcoreinfo", "plain"] {
            let dump = dir.join(boot).join("vmcore.elf");
            let truth_path = dir.join(boot).join("truth.jsonl");
            if !dump.is_file() || !truth_path.is_file() {
                continue;
            }
            let truth = Truth::load(&truth_path);
            for with_vmlinux in [true, false] {
                let opts = OpenOptions::default();
                let what = format!(
                    "{abi}/{boot} {}",
                    if with_vmlinux {
                        "with vmlinux"
                    } else {
                        "no vmlinux"
                    }
                );
                let prog = if with_vmlinux {
                    Program::open(&dir.join("vmlinux"), &dump, &opts)
                } else {
                    Program::open_without_vmlinux(&dump, &opts)
                };
                let dump_name = if boot == "vmcoreinfo" {
                    "QEMU ELF, VMCOREINFO"
                } else {
                    "QEMU ELF, no VMCOREINFO"
                };
                let mode = if with_vmlinux { "-dbg" } else { "none" };
                let prog = match prog {
                    Ok(p) => p,
                    Err(e) => {
                        let e = e.to_string().replace('|', "/");
                        let _ = writeln!(
                            table,
                            "| {abi} | {dump_name} | {mode} | error: {e} | – | – | – | – | – |"
                        );
                        failures.push(format!("{what}: open: {e}"));
                        continue;
                    }
                };
                let (ps_ok, ps_n, ps_gone, ps_problems) = check_ps(&truth, &prog);
                let (bt_eq, bt_n, bt_ran, bt_problems) = check_bt(&truth, &prog);
                // The tables are the same with or without the vmlinux: checked once.
                let ks = (!with_vmlinux).then(|| check_kallsyms(&truth, &prog));
                eprintln!(
                    "{what}: ps {ps_ok}/{ps_n} tasks right; bt {bt_eq}/{bt_n} stacks equal ({bt_ran} ran in between)"
                );
                for p in ps_problems.iter().chain(&bt_problems).take(10) {
                    eprintln!("  {p}");
                }
                let gone_note = if ps_gone > 0 {
                    format!(" + {ps_gone} RT `irq/N-ttyS1` gone with the recorder")
                } else {
                    String::new()
                };
                let ps_cell = if ps_problems.is_empty() {
                    format!("right: {ps_ok}/{ps_n} tasks{gone_note}")
                } else {
                    format!(
                        "**wrong**: {ps_ok}/{ps_n} tasks, {} problems",
                        ps_problems.len()
                    )
                };
                let bt_cell = if bt_problems.is_empty() && bt_eq == bt_n && bt_n > 0 {
                    format!("right: {bt_eq}/{bt_n} stacks ({bt_ran} ran)")
                } else {
                    format!("**wrong**: {bt_eq}/{bt_n} stacks ({bt_ran} ran)")
                };
                let ks_cell = match &ks {
                    None => "–".to_owned(),
                    Some((same, n, how, p)) if p.is_empty() => {
                        format!("right: {same}/{n} symbols (found by {how})")
                    }
                    Some((same, n, how, _)) => format!("**wrong**: {same}/{n} ({how})"),
                };
                if let Some((same, n, how, p)) = &ks {
                    eprintln!("{what}: kallsyms {same}/{n} identical (found by {how})");
                    if !p.is_empty() {
                        failures.push(format!("{what}: {p:?}"));
                    }
                }
                let (log_same, log_n, log_problems) = check_dmesg(&truth, &prog);
                let (mods, mod_problems) = check_lsmod(&truth, &prog);
                eprintln!("{what}: dmesg {log_same}/{log_n} lines equal; lsmod {mods} modules");
                let log_cell = if log_problems.is_empty() {
                    format!("right: {log_n} lines")
                } else {
                    format!("**wrong**: {log_same}/{log_n} lines")
                };
                let mod_cell = if mod_problems.is_empty() {
                    format!("right: {mods} modules")
                } else {
                    "**wrong**".to_owned()
                };
                failures.extend(
                    log_problems
                        .iter()
                        .chain(&mod_problems)
                        .map(|p| format!("{what}: {p}")),
                );
                let _ = writeln!(
                    table,
                    "| {abi} | {dump_name} | {mode} | ok | {ps_cell} | {bt_cell} | {ks_cell} | {log_cell} | {mod_cell} |"
                );
                if !ps_problems.is_empty() {
                    failures.push(format!(
                        "{what}: ps: {:?}",
                        &ps_problems[..ps_problems.len().min(5)]
                    ));
                }
                if !bt_problems.is_empty() || bt_eq != bt_n || bt_n < 100 {
                    failures.push(format!(
                        "{what}: bt {bt_eq}/{bt_n}: {:?}",
                        &bt_problems[..bt_problems.len().min(5)]
                    ));
                }
            }
        }
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/matrix");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("table.md"), &table);
    eprintln!(
        "matrix: covered {}\n{table}",
        kernels
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `kpeek pahole -C NAME` against the real pahole (`-F dwarf -C NAME`) on
/// each cached distro kernel's `-dbg` vmlinux, byte for byte. One struct
/// per pahole run: pahole 1.24 given a list leaves some out (on Debian's
/// 6.1, `printk_info` is missing from the list's output, present alone).
#[test]
fn distro_pahole_equals_pahole() {
    const STRUCTS: &[&str] = &[
        "task_struct",
        "mm_struct",
        "sched_entity",
        "rq",
        "file",
        "inode",
        "dentry",
        "super_block",
        "page",
        "module",
        "kmem_cache",
        "sk_buff",
        "vm_area_struct",
        "printk_info",
    ];
    let kernels = cached_kernels();
    if kernels.is_empty() {
        assert!(
            std::env::var_os("KPEEK_MATRIX_REQUIRE").is_none(),
            "matrix: no distro kernels cached"
        );
        eprintln!("matrix: no distro kernels cached: pahole not compared");
        return;
    }
    for (abi, dir) in &kernels {
        let vmlinux = dir.join("vmlinux");
        for name in STRUCTS {
            let theirs = std::process::Command::new(common::require_tool("pahole"))
                .args(["-F", "dwarf", "-C", name])
                .arg(&vmlinux)
                .output()
                .expect("pahole");
            let theirs = String::from_utf8_lossy(&theirs.stdout).into_owned();
            assert!(
                theirs.starts_with(&format!("struct {name} {{")),
                "{abi}: pahole printed no {name}"
            );
            let ours = common::kpeek_command()
                .args(["pahole", "-C", name, "--vmlinux"])
                .arg(&vmlinux)
                .output()
                .expect("kpeek");
            assert!(
                ours.status.success(),
                "{abi}: {}",
                String::from_utf8_lossy(&ours.stderr)
            );
            let ours = String::from_utf8_lossy(&ours.stdout);
            assert!(
                ours == theirs,
                "{abi}: kpeek pahole {name} differs from pahole: {}",
                common::first_difference(&theirs, &ours)
            );
        }
        eprintln!(
            "{abi}: pahole: {} structs byte-identical to pahole -F dwarf",
            STRUCTS.len()
        );
    }
}
