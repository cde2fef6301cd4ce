//! `kpeek ps` against oracles kpeek did not write: the guest's own
//! `/proc/*/task/*` recorded just before each dump, and drgn's listing.
//!
//! Rules (documented in docs/TESTING.md):
//! - every task the guest listed is found with the same pid, tgid, ppid,
//!   kernel-thread flag and comm (a kworker's `/proc` name carries a
//!   `-workqueue` suffix and is longer than `task->comm`: the truth must
//!   start with kpeek's comm);
//! - extra tasks in the dump may only be idle tasks (not in `/proc`), the
//!   truth recorder's shell (alive in the kdump: it triggered the panic) and
//!   at most a few kernel threads started between the listing and the dump;
//! - states are identical for every user task and for at least 90% of the
//!   kernel threads (a kworker may wake between the listing and the dump).

mod common;

use std::collections::HashMap;

use common::Fixture;
use kpeek::kernel::{task_list, OpenOptions, Program, Task};

fn check(
    fixture: &Fixture,
    boot_name: &str,
    path: &std::path::Path,
    options: &OpenOptions,
) -> usize {
    let prog = Program::open(&fixture.vmlinux(), path, options)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check_program(fixture, boot_name, path, &prog)
}

fn check_program(
    fixture: &Fixture,
    boot_name: &str,
    path: &std::path::Path,
    prog: &Program,
) -> usize {
    let boot = fixture.boot(boot_name);
    let truth = boot.truth();
    let list = task_list(prog).expect("walk");
    let what = format!(
        "{}/{boot_name}/{}",
        fixture.name,
        path.file_name().and_then(|f| f.to_str()).unwrap_or("")
    );
    assert!(list.warnings.is_empty(), "{what}: {:?}", list.warnings);
    let by_pid: HashMap<i32, &Task> = list
        .tasks
        .iter()
        .filter(|t| t.pid != 0)
        .map(|t| (t.pid, t))
        .collect();

    let (mut kthread_states, mut kthread_same) = (0, 0);
    for want in &truth.tasks {
        let got = by_pid
            .get(&(want.tid as i32))
            .unwrap_or_else(|| panic!("{what}: missing pid {} {}", want.tid, want.comm));
        assert_eq!(got.tgid as i64, want.tgid, "{what}: tgid of {}", want.tid);
        assert_eq!(got.ppid as i64, want.ppid(), "{what}: ppid of {}", want.tid);
        assert_eq!(
            got.kthread,
            want.is_kthread(),
            "{what}: kthread flag of {}",
            want.tid
        );
        if want.is_kthread() {
            assert!(
                want.comm.starts_with(&got.comm),
                "{what}: comm of {}: {:?} vs {:?}",
                want.tid,
                got.comm,
                want.comm
            );
            kthread_states += 1;
            kthread_same += usize::from(got.state == want.state());
        } else {
            assert_eq!(got.comm, want.comm, "{what}: comm of {}", want.tid);
            assert_eq!(
                got.state,
                want.state(),
                "{what}: state of {} {}",
                want.tid,
                want.comm
            );
        }
    }
    assert!(
        kthread_same * 10 >= kthread_states * 9,
        "{what}: {kthread_same}/{kthread_states} kernel-thread states"
    );

    let truth_pids: Vec<i64> = truth.tasks.iter().map(|t| t.tid).collect();
    let extra: Vec<&Task> = list
        .tasks
        .iter()
        .filter(|t| {
            t.pid != 0
                && !truth_pids.contains(&(t.pid as i64))
                && !truth.capturers.contains(&(t.pid as i64))
        })
        .collect();
    assert!(
        extra.iter().all(|t| t.kthread) && extra.len() <= 3,
        "{what}: unexpected tasks {extra:#?}"
    );
    // One idle task per CPU.
    let idle = list.tasks.iter().filter(|t| t.pid == 0).count();
    assert_eq!(idle, 2, "{what}: idle tasks");
    truth.tasks.len()
}

#[test]
fn every_dump_lists_exactly_the_guests_tasks() {
    let mut checked = 0;
    for fixture in Fixture::all() {
        for boot in fixture.boot_names() {
            for (path, _) in fixture.boot(&boot).dumps() {
                checked += check(&fixture, &boot, &path, &OpenOptions::default());
            }
        }
    }
    assert!(checked > 12 * 340, "{checked} tasks checked");
}

/// No vmlinux at all: the dump's own kallsyms and BTF, on every dump
/// (the tables found through VMCOREINFO, or by their shape without it),
/// and on the QEMU ELF dumps with their VMCOREINFO ignored; against the
/// same truth.
#[test]
fn every_dump_without_a_vmlinux() {
    let (mut dumps, mut listed) = (0, 0);
    for fixture in Fixture::all() {
        for boot in fixture.boot_names() {
            for (path, format) in fixture.boot(&boot).dumps() {
                listed += 1;
                let mut options = vec![OpenOptions::default()];
                if boot == "qemu-vmcoreinfo" && format.starts_with("qemu-elf") {
                    options.push(OpenOptions {
                        ignore_vmcoreinfo: true,
                        ..Default::default()
                    });
                }
                for o in options {
                    let prog = Program::open_without_vmlinux(&path, &o)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert_eq!(prog.debug.type_source(), kpeek::debuginfo::TypeSource::Btf);
                    assert_eq!(
                        prog.debug.symbol_source(),
                        kpeek::debuginfo::SymbolSource::Kallsyms
                    );
                    check_program(&fixture, &boot, &path, &prog);
                    dumps += 1;
                }
            }
        }
    }
    // Every dump of the manifests (15), and the two QEMU ELF dumps of each
    // kernel's qemu-vmcoreinfo boot once more without their VMCOREINFO.
    assert!(listed >= 15, "{listed} dumps");
    assert_eq!(
        dumps,
        listed + 2 * 2,
        "every dump + 2 kernels x 2 without their VMCOREINFO"
    );
}

#[test]
fn the_same_without_vmcoreinfo() {
    for fixture in Fixture::all() {
        for (path, format) in fixture.boot("qemu-vmcoreinfo").dumps() {
            if format.starts_with("qemu-elf") {
                check(
                    &fixture,
                    "qemu-vmcoreinfo",
                    &path,
                    &OpenOptions {
                        ignore_vmcoreinfo: true,
                        ..Default::default()
                    },
                );
            }
        }
    }
}

#[test]
fn equals_drgns_listing() {
    let mut compared = 0;
    for fixture in Fixture::all() {
        let boots = fixture.boot_names();
        for (boot, file) in [
            ("qemu-vmcoreinfo", "vmcore.elf"),
            ("qemu-vmcoreinfo", "vmcore-paging.elf"),
            ("qemu-vmcoreinfo", "vmcore.kdump-zlib.flat"),
            ("kdump", "vmcore.kdump"),
            ("hung", "vmcore.elf"),
            ("hung-panic", "vmcore.kdump"),
        ]
        .into_iter()
        .filter(|(boot, _)| boots.iter().any(|b| b == boot))
        {
            let oracle = fixture.oracle_path(&format!("drgn/{boot}-{file}.json"));
            let drgn: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&oracle).expect("oracle"))
                    .expect("json");
            if drgn.get("error").is_some() {
                // drgn could not open this dump at all (recorded at build time).
                continue;
            }
            let prog = Program::open(
                &fixture.vmlinux(),
                &fixture.boot(boot).dir.join(file),
                &OpenOptions::default(),
            )
            .expect("open");
            let ours = task_list(&prog).expect("walk");
            let key = |pid: i64, comm: &str| (pid, comm.to_owned());
            let mine: HashMap<(i64, String), &Task> = ours
                .tasks
                .iter()
                .map(|t| (key(t.pid as i64, &t.comm), t))
                .collect();
            let theirs = drgn["tasks"].as_array().expect("tasks");
            assert_eq!(
                theirs.len(),
                ours.tasks.len(),
                "{}/{boot}/{file}: task count",
                fixture.name
            );
            for d in theirs {
                let comm = d["comm"].as_str().expect("comm");
                let t = mine
                    .get(&key(d["pid"].as_i64().expect("pid"), comm))
                    .unwrap_or_else(|| {
                        panic!(
                            "{}/{boot}/{file}: drgn has {d}, kpeek does not",
                            fixture.name
                        )
                    });
                assert_eq!(t.tgid as i64, d["tgid"].as_i64().expect("tgid"), "{d}");
                assert_eq!(
                    t.state.to_string(),
                    d["state"].as_str().expect("state"),
                    "{d}"
                );
                assert_eq!(t.kthread, d["kthread"].as_bool().expect("kthread"), "{d}");
                assert_eq!(
                    format!("{:#x}", t.task.0),
                    d["task"].as_str().expect("task"),
                    "{d}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 1500, "{compared} tasks compared with drgn");
}

#[test]
fn the_cli_prints_lx_ps_and_thrd_showall() {
    let fixture = Fixture::load("linux-6.12");
    let boot = fixture.boot("qemu-plain");
    let core = boot.dir.join("vmcore.elf");
    let run = |args: &[&str]| {
        let out = common::kpeek_command()
            .args(args)
            .arg("--vmlinux")
            .arg(fixture.vmlinux())
            .arg("--core")
            .arg(&core)
            .output()
            .expect("run kpeek");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "stderr is empty on a clean run");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let truth = boot.truth();
    let lx = run(&["ps", "--style", "lx"]);
    let mut lines = lx.lines();
    assert_eq!(lines.next(), Some("      TASK          PID    COMM"));
    // lx-ps lists swapper/0 and every thread the guest listed (plus the capturer, if alive).
    assert_eq!(lines.clone().count(), truth.tasks.len() + 1);
    assert!(lx
        .lines()
        .nth(1)
        .expect("row")
        .ends_with("   0   swapper/0"));
    let threads = run(&["threads"]);
    assert!(threads.lines().any(|l| l.contains("[   kpeek_fixture]")));
    let mt = threads
        .lines()
        .find(|l| l.contains(" kpw-mt "))
        .expect("kpw-mt row");
    assert!(mt.trim_end().ends_with(" 301"), "{mt}");
    assert_eq!(
        threads.lines().last(),
        Some(
            format!(
                "total # of threads on the system: {}",
                truth.tasks.len() + 1
            )
            .as_str()
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&["ps", "--threads", "--format", "json"])).expect("json");
    assert_eq!(
        json["tasks"].as_array().expect("tasks").len(),
        truth.tasks.len() + 2
    );
    assert!(json["tasks"][0]["task"]
        .as_str()
        .expect("address")
        .starts_with("0xffff"));
}

/// Run `kpeek ps` on a doctored copy of a dump.
fn ps_on(vmlinux: &std::path::Path, dump: &[u8], name: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("kpeek-{name}-{}.elf", std::process::id()));
    std::fs::write(&path, dump).expect("write");
    let out = common::kpeek_command()
        .args(["ps", "--threads", "--vmlinux"])
        .arg(vmlinux)
        .arg("--core")
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn a_broken_or_cyclic_task_list_gives_a_partial_listing_and_a_warning() {
    let fixture = Fixture::load("linux-6.12");
    let core = fixture.boot("qemu-plain").dir.join("vmcore.elf");
    let prog = Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect("open");
    let list = task_list(&prog).expect("walk");
    let tasks_off = prog
        .debug
        .member("task_struct", "tasks")
        .expect("tasks")
        .offset;
    let find = |comm: &str| {
        list.tasks
            .iter()
            .find(|t| t.comm == comm)
            .expect(comm)
            .task
            .0
            + tasks_off
    };
    let (alpha, beta) = (find("kpw-alpha"), find("kpw-beta"));
    let phys = |va: u64| {
        prog.space
            .translate(kpeek::addr::VirtAddr(va))
            .expect("translate")
            .0
    };
    let original = std::fs::read(&core).expect("dump");
    let poke = |dump: &mut Vec<u8>, va: u64, value: u64| {
        let off = common::elf_file_offset(dump, phys(va));
        dump[off..off + 8].copy_from_slice(&value.to_le_bytes());
    };

    // beta.tasks.next points into the void.
    let mut void = original.clone();
    poke(&mut void, beta, 0xffff_dead_0000_0000);
    // beta.tasks.next = alpha.tasks and alpha.tasks.prev = beta.tasks: a
    // consistent cycle that never returns to init_task.
    let mut cycle = original.clone();
    poke(&mut cycle, beta, alpha);
    poke(&mut cycle, alpha + 8, beta);

    for (name, dump) in [("void", void), ("cycle", cycle)] {
        let out = ps_on(&fixture.vmlinux(), &dump, name);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("kpeek: warning:") && !stderr.contains("panicked"),
            "{name}: {stderr}"
        );
        // What came before the bad link is listed; what came after is not.
        // A cycle that never returns to the head gives one node two
        // predecessors: the next->prev check stops the walk where the cycle
        // is entered (kpw-mt -> kpw-alpha, whose prev now says kpw-beta).
        assert!(stdout.contains(" kpw-mt"), "{name}");
        let (listed, stopped_at) = if name == "void" {
            ("kpw-beta", beta)
        } else {
            ("kpw-mt", alpha)
        };
        assert!(stdout.contains(&format!(" {listed}")), "{name}");
        assert!(
            stderr.contains(&format!("{stopped_at:#x}")),
            "{name}: {stderr}"
        );
        assert!(
            !stdout.contains(" kpw-gamma"),
            "{name}: listed past the bad link"
        );
    }
}

#[test]
fn lx_style_matches_the_kernels_own_lx_ps() {
    for fixture in Fixture::all() {
        let oracle =
            std::fs::read_to_string(fixture.oracle_path("lx-ps.txt")).expect("lx-ps oracle");
        let mut lines = oracle.lines();
        assert_eq!(
            lines.next(),
            Some("      TASK          PID    COMM"),
            "{}",
            fixture.name
        );
        // Every row the kernel's lx-ps printed, re-rendered by kpeek, byte for byte.
        let mut oracle_rows = Vec::new();
        for line in lines {
            let (addr, rest) = line.split_once(' ').expect("address");
            let task = u64::from_str_radix(addr.trim_start_matches("0x"), 16).expect("hex");
            // The pid is centred in 5 columns (wider pids overflow), then one space.
            let pid_field: String = rest
                .chars()
                .take_while(|c| *c == ' ' || c.is_ascii_digit())
                .collect();
            let pid: i32 = pid_field.trim().parse().expect("pid");
            let comm = rest[pid_field.trim_end().len() + 1..]
                .trim_start_matches(' ')
                .to_owned();
            let comm = if rest.len() > 6 {
                rest[rest.len() - comm.len()..].to_owned()
            } else {
                comm
            };
            assert_eq!(
                kpeek::render::ps::lx_ps_row(task, pid, &comm),
                line,
                "{}",
                fixture.name
            );
            oracle_rows.push((pid, comm));
        }
        // The kernel's lx-ps saw exactly the tasks its boot's truth listed, plus swapper/0.
        let truth = fixture.boot("live-nokaslr").truth();
        let mut want: Vec<i64> = truth.tasks.iter().map(|t| t.tid).chain([0]).collect();
        let mut got: Vec<i64> = oracle_rows.iter().map(|(p, _)| *p as i64).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{}: lx-ps and the truth disagree", fixture.name);

        // kpeek --style lx on a dump of the same kernel: the same workload, in the same order.
        let core = fixture.boot("qemu-plain").dir.join("vmcore.elf");
        let out = common::kpeek_command()
            .args(["ps", "--style", "lx", "--vmlinux"])
            .arg(fixture.vmlinux())
            .arg("--core")
            .arg(&core)
            .output()
            .expect("run");
        assert!(out.status.success());
        let ours = String::from_utf8(out.stdout).expect("utf-8");
        let workload = |rows: Vec<String>| -> Vec<String> {
            rows.into_iter().filter(|c| c.starts_with("kpw-")).collect()
        };
        let theirs = workload(oracle_rows.iter().map(|(_, c)| c.clone()).collect());
        let mine = workload(
            ours.lines()
                .skip(1)
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
                .collect(),
        );
        // Processes init started, and kpw-mt's threads, come in a fixed
        // order; the grandchildren land on the list when their fork races
        // finish, which differs from boot to boot: compare those as a set.
        let forked = [
            "kpw-vchild",
            "kpw-chain1",
            "kpw-chain2",
            "kpw-chain3",
            "kpw-zombie",
            "kpw-tracee",
        ];
        let split = |v: &[String]| -> (Vec<String>, Vec<String>) {
            let (mut a, mut b): (Vec<String>, Vec<String>) = v
                .iter()
                .cloned()
                .partition(|c| !forked.contains(&c.as_str()));
            b.sort();
            a.shrink_to_fit();
            (a, b)
        };
        assert_eq!(
            split(&mine),
            split(&theirs),
            "{}: workload order",
            fixture.name
        );
        assert!(theirs.len() > 300, "{}", fixture.name);
    }
}

/// Kernel stacks live in vmalloc space, which RANDOMIZE_MEMORY can put
/// within 64 TiB of the direct map: translating them must agree with the
/// page tables (the direct-map shortcut once claimed them).
#[test]
fn kernel_stacks_translate_through_the_page_tables() {
    for fixture in Fixture::all() {
        for boot in ["qemu-plain", "kdump"] {
            let core = fixture.boot(boot).dir.join(if boot == "kdump" {
                "vmcore.kdump"
            } else {
                "vmcore.elf"
            });
            let prog =
                Program::open(&fixture.vmlinux(), &core, &OpenOptions::default()).expect("open");
            let list = task_list(&prog).expect("walk");
            let layout = prog.located.layout;
            let mut checked = 0;
            for t in list.tasks.iter().filter(|t| t.pid != 0) {
                let walked = prog.space.walk(layout.pgd, t.stack);
                if let Ok(walked) = walked {
                    assert_eq!(
                        prog.space.translate(t.stack).expect("translate"),
                        walked,
                        "{}: {}",
                        fixture.name,
                        t.comm
                    );
                    checked += 1;
                }
            }
            assert!(
                checked > 300,
                "{}/{boot}: {checked} stacks mapped",
                fixture.name
            );
        }
    }
}

#[test]
fn the_tree_puts_every_process_under_the_parent_proc_names() {
    for fixture in Fixture::all() {
        let boot = fixture.boot("qemu-plain");
        let out = common::kpeek_command()
            .args(["ps", "--tree", "--vmlinux"])
            .arg(fixture.vmlinux())
            .arg("--core")
            .arg(boot.dir.join("vmcore.elf"))
            .output()
            .expect("run");
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).expect("utf-8");
        // Each level of depth is two characters of prefix before "├─"/"└─".
        let mut stack: Vec<i64> = Vec::new();
        let mut parent_of: HashMap<i64, i64> = HashMap::new();
        for line in text.lines() {
            let chars: Vec<char> = line.chars().collect();
            let (depth, label) = match chars.iter().position(|&c| c == '├' || c == '└') {
                Some(i) => (i / 2 + 1, chars[i + 2..].iter().collect::<String>()),
                None => (0, line.to_owned()),
            };
            let pid: i64 = label
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .expect("pid");
            stack.truncate(depth);
            if let Some(&parent) = stack.last() {
                parent_of.insert(pid, parent);
            }
            stack.push(pid);
        }
        let truth = boot.truth();
        let processes: Vec<_> = truth.tasks.iter().filter(|t| t.tid == t.tgid).collect();
        for p in &processes {
            assert_eq!(
                parent_of.get(&p.tid),
                Some(&p.ppid()),
                "{}: parent of {} {}",
                fixture.name,
                p.tid,
                p.comm
            );
        }
        assert!(processes.len() > 40, "{}", fixture.name);
    }
}
