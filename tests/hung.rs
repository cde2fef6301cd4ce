//! `kpeek hung` against what kpeek did not write: the guest's own
//! `/proc/PID/stat` state letters and `/proc/PID/stack` (the truth), the
//! fixture module's own record of every lock it holds and waits on (its
//! `kpeek_fixture: hung: ...` console lines, in the truth's dmesg), and
//! the kernel's hung-task detector's reports (`INFO: task COMM:PID blocked
//! for more than N seconds.`, in the truth's dmesg or the boot's console).
//!
//! The hung boots (`hung`, `hung-panic`) exist in fixtures built with the
//! fixture module's `mode=hung` (vmlinux-fixtures/README.md): linux-6.12
//! has them; the checks that need them run on every fixture that has them.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::{detector_reports, module_records, Boot, Fixture, ModuleRecord};
use kpeek::kernel::hung::{HungQuery, LockKind, Owner};
use kpeek::kernel::{task_list_brief, OpenOptions, Program};
use kpeek::report::hung::{hung_report, HungReport};

fn open(fixture: &Fixture, path: &Path) -> Program {
    Program::open(&fixture.vmlinux(), path, &OpenOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn report(prog: &Program) -> HungReport {
    hung_report(prog, HungQuery::default())
        .expect("hung report")
        .body
}

/// The boots of every fixture, with their dumps.
fn every_dump() -> Vec<(Fixture, Boot, std::path::PathBuf)> {
    let mut out = Vec::new();
    for fixture in Fixture::all() {
        for name in fixture.boot_names() {
            for (path, _) in fixture.boot(&name).dumps() {
                out.push((Fixture::load(&fixture.name), fixture.boot(&name), path));
            }
        }
    }
    out
}

/// The hung boots that exist: (fixture, boot). linux-6.12 has them (its
/// fixture was built with the module's hung mode); linux-6.1 predates it.
fn hung_boots(name: &str) -> Vec<(Fixture, Boot)> {
    let found: Vec<(Fixture, Boot)> = Fixture::all()
        .into_iter()
        .filter(|f| f.boot_names().iter().any(|b| b == name))
        .map(|f| {
            let boot = f.boot(name);
            (f, boot)
        })
        .collect();
    assert!(
        found.iter().any(|(f, _)| f.name == "linux-6.12"),
        "linux-6.12 has no {name} boot"
    );
    found
}

/// Every task the guest showed in D state, that did not run between the
/// listing and the dump, is listed, with the guest's /proc/PID/stack as its
/// group's stack; and nothing but D tasks is listed.
#[test]
fn every_d_task_is_listed_with_its_proc_stack() {
    let mut checked = 0;
    for (fixture, boot, path) in every_dump() {
        let truth = boot.truth();
        let prog = open(&fixture, &path);
        let r = report(&prog);
        let switches: HashMap<i32, Option<(u64, u64)>> = task_list_brief(&prog)
            .expect("tasks")
            .tasks
            .iter()
            .map(|t| (t.pid, t.switches))
            .collect();
        let listed: HashMap<i32, &Vec<String>> = r
            .groups
            .iter()
            .flat_map(|g| g.pids.iter().map(move |&p| (p, &g.stack)))
            .collect();
        for g in &r.groups {
            assert_eq!(g.count, g.pids.len());
            assert!(g.tasks.iter().all(|t| t.state == 'D'), "{g:?}");
        }
        let what = format!("{}/{}", boot.name, path.display());
        let mut d_tasks = 0;
        for t in truth.tasks.iter().filter(|t| t.state() == 'D') {
            let pid = t.tid as i32;
            if switches.get(&pid).copied().flatten() != common::switches(t) {
                continue; // it ran in between
            }
            d_tasks += 1;
            let stack = listed
                .get(&pid)
                .unwrap_or_else(|| panic!("{what}: pid {pid} {} (D) not listed", t.comm));
            let want: Vec<String> = t
                .stack
                .as_deref()
                .unwrap_or("")
                .lines()
                .map(str::to_owned)
                .collect();
            assert_eq!(**stack, want, "{what}: pid {pid} {}", t.comm);
            checked += 1;
        }
        assert!(d_tasks >= 1, "{what}: no D task in the truth");
        assert_eq!(r.summary.listed, listed.len());
    }
    eprintln!("{checked} D-state tasks listed with their /proc/PID/stack");
}

/// The fixture module's record: every task it says waits on a lock is
/// listed waiting on that address, of that type, named by the module's
/// symbol; each mutex's and rwsem's owner is the task the module says
/// holds it; the ABBA deadlock is the one cycle.
#[test]
fn locks_owners_and_the_abba_cycle_equal_the_modules_record() {
    for (fixture, boot) in hung_boots("hung")
        .into_iter()
        .chain(hung_boots("hung-panic"))
    {
        let truth = boot.truth();
        let records = module_records(&truth);
        let waits: Vec<&ModuleRecord> = records.iter().filter(|r| !r.holds).collect();
        let holds: HashMap<u64, &ModuleRecord> = records
            .iter()
            .filter(|r| r.holds)
            .map(|r| (r.addr, r))
            .collect();
        // The module's set-up: 2 ABBA waits, rwsem reader, completion, 3 + 1 readers.
        assert_eq!(waits.len(), 8, "{}: {records:?}", boot.name);
        assert_eq!(holds.len(), 3, "{}: {records:?}", boot.name);
        for (path, _) in boot.dumps() {
            let prog = open(&fixture, &path);
            let r = report(&prog);
            let tasks: HashMap<i32, _> = r
                .groups
                .iter()
                .flat_map(|g| g.tasks.iter())
                .map(|t| (t.pid, t))
                .collect();
            for w in &waits {
                let t = tasks
                    .get(&w.pid)
                    .unwrap_or_else(|| panic!("{}: pid {} not listed", path.display(), w.pid));
                assert_eq!(t.comm, w.comm);
                let got = t
                    .waits
                    .as_ref()
                    .unwrap_or_else(|| panic!("pid {} {}: no lock found", w.pid, w.comm));
                assert_eq!(got.lock.0, w.addr, "pid {} {}", w.pid, w.comm);
                let ty = match got.kind {
                    LockKind::Mutex => "mutex",
                    LockKind::RwsemRead | LockKind::RwsemWrite => "rwsem",
                    LockKind::Semaphore => "semaphore",
                    LockKind::Completion => "completion",
                };
                assert_eq!(ty, w.ty, "pid {} {}", w.pid, w.comm);
                assert_eq!(
                    got.symbol.as_deref(),
                    Some(format!("{} [kpeek_fixture]", w.name).as_str()),
                    "pid {} {}",
                    w.pid,
                    w.comm
                );
                match (holds.get(&w.addr), &got.owner) {
                    (Some(h), Owner::Task { pid, comm, .. }) => {
                        assert_eq!((*pid, comm), (h.pid, &h.comm), "owner of {}", w.name)
                    }
                    (None, Owner::NotTracked) => assert_eq!(w.ty, "completion"),
                    (h, o) => panic!("{}: the module says {h:?}, kpeek {o:?}", w.name),
                }
            }
            // rwsem_down_read vs write, as the module took it.
            let reader = waits
                .iter()
                .find(|w| w.comm == "kpeek_rw_reader")
                .expect("the rwsem reader");
            assert_eq!(
                tasks[&reader.pid].waits.as_ref().map(|w| w.kind),
                Some(LockKind::RwsemRead)
            );
            // The ABBA pair, from the module's holds, is the one cycle.
            let abba: BTreeSet<i32> = holds
                .values()
                .filter(|h| h.ty == "mutex")
                .map(|h| h.pid)
                .collect();
            assert_eq!(abba.len(), 2);
            assert_eq!(r.cycles.len(), 1, "{}: {:?}", path.display(), r.cycles);
            let cycle: BTreeSet<i32> = r.cycles[0].pids.iter().copied().collect();
            assert_eq!(cycle, abba);
            assert_eq!(r.summary.cycles, 1);
            // The rwsem owner sleeps in S: it is among the owners, with its state.
            let owner = holds
                .values()
                .find(|h| h.ty == "rwsem")
                .expect("rwsem owner");
            let o = r
                .owners
                .iter()
                .find(|t| t.pid == owner.pid)
                .expect("the rwsem owner is described");
            let guest_state = truth
                .tasks
                .iter()
                .find(|t| t.tid == i64::from(owner.pid))
                .map(|t| t.state());
            assert_eq!(Some(o.state), guest_state);
            // The graph has each wait and each ownership as an edge.
            for w in &waits {
                assert!(r.graph.edges.iter().any(|e| e.relation == "waits_on"
                    && e.from == format!("task:{}", w.pid)
                    && e.to == format!("lock:{:#x}", w.addr)));
            }
            for (addr, h) in &holds {
                assert!(r.graph.edges.iter().any(|e| e.relation == "owned_by"
                    && e.from == format!("lock:{addr:#x}")
                    && e.to == format!("task:{}", h.pid)));
            }
            eprintln!(
                "{}: {} waits, {} owners, cycle {:?} as the module recorded",
                path.display(),
                waits.len(),
                holds.len(),
                r.cycles[0].pids
            );
        }
    }
}

/// The same without the vmlinux: types from the kernel's BTF, symbols from
/// its kallsyms.
#[test]
fn without_the_vmlinux_the_same_locks_and_owners() {
    for (fixture, boot) in hung_boots("hung") {
        let truth = boot.truth();
        let records = module_records(&truth);
        for (path, _) in boot.dumps() {
            let with = report(&open(&fixture, &path));
            let prog =
                Program::open_without_vmlinux(&path, &OpenOptions::default()).expect("opens");
            let without = report(&prog);
            let waits = |r: &HungReport| -> Vec<(i32, Option<u64>, Option<i32>)> {
                let mut v: Vec<_> = r
                    .groups
                    .iter()
                    .flat_map(|g| &g.tasks)
                    .map(|t| {
                        let owner = t.waits.as_ref().and_then(|w| match w.owner {
                            Owner::Task { pid, .. } => Some(pid),
                            _ => None,
                        });
                        (t.pid, t.waits.as_ref().map(|w| w.lock.0), owner)
                    })
                    .collect();
                v.sort_unstable();
                v
            };
            assert_eq!(waits(&with), waits(&without));
            // And they are the module's.
            for rec in records.iter().filter(|r| !r.holds) {
                assert!(waits(&without)
                    .iter()
                    .any(|&(pid, lock, _)| pid == rec.pid && lock == Some(rec.addr)));
            }
            assert_eq!(with.cycles.len(), without.cycles.len());
        }
    }
}

/// The kernel's hung-task detector named tasks in the log: kpeek marks each
/// as hung, blocked at least as long as the detector said; for the
/// hung-task panic, `info` names them (the detector's reports are on the
/// console: the truth was recorded before it fired).
#[test]
fn the_detectors_tasks_are_hung_and_info_names_them() {
    for (fixture, boot) in hung_boots("hung") {
        let reports = detector_reports(&boot.truth().dmesg);
        assert!(!reports.is_empty(), "the detector reported nothing");
        for (path, _) in boot.dumps() {
            let r = report(&open(&fixture, &path));
            let tasks: HashMap<i32, _> = r
                .groups
                .iter()
                .flat_map(|g| &g.tasks)
                .map(|t| (t.pid, t))
                .collect();
            for (pid, comm, secs) in &reports {
                let t = tasks.get(pid).expect("a task the detector named is listed");
                assert_eq!(&t.comm, comm);
                assert!(t.blocked.hung, "pid {pid} {comm}: {:?}", t.blocked);
                assert!(t.blocked.detector_secs >= Some(*secs), "{:?}", t.blocked);
            }
        }
    }
    for (fixture, boot) in hung_boots("hung-panic") {
        let console = std::fs::read_to_string(boot.dir.join("console.log")).expect("console.log");
        let reports = detector_reports(&console);
        assert!(!reports.is_empty(), "the detector reported nothing");
        for (path, _) in boot.dumps() {
            let prog = open(&fixture, &path);
            let info = kpeek::report::cpus::info(&prog).body;
            assert!(
                info.panic_message
                    .as_deref()
                    .is_some_and(|m| m.contains("hung_task: blocked tasks")),
                "{:?}",
                info.panic_message
            );
            let h = info.hung.expect("info summarises the hung tasks");
            for (pid, comm, _) in &reports {
                assert!(
                    h.hung_tasks.contains(&(*pid, comm.clone())),
                    "{}: the detector named {comm}:{pid}; info says {:?}",
                    path.display(),
                    h.hung_tasks
                );
            }
            let line = kpeek::render::hung::summary_line(&h);
            assert!(line.contains("1 deadlock cycle"), "{line}");
            eprintln!("{}: info: {line}", path.display());
        }
    }
}

/// The module's record of the ABBA mutex it holds, the boot's ELF dump,
/// and that dump opened: what the damaged-dump tests start from.
fn mutex_a_in_the_elf_dump(
    fixture: &Fixture,
    boot: &Boot,
) -> (ModuleRecord, std::path::PathBuf, Program) {
    let held = module_records(&boot.truth())
        .into_iter()
        .find(|r| r.holds && r.name == "kpeek_hung_mutex_a")
        .expect("the module holds mutex a");
    let (path, _) = boot
        .dumps()
        .into_iter()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "elf"))
        .expect("an ELF dump");
    let prog = open(fixture, &path);
    (held, path, prog)
}

/// A damaged owner word (a copy of the dump with the ABBA mutex's owner
/// overwritten with garbage, then with the mutex's own address): "owner
/// unknown" with the raw value, never a loop, never a wrong task.
#[test]
fn a_damaged_owner_is_unknown_not_followed() {
    for (fixture, boot) in hung_boots("hung") {
        let (held, path, prog) = mutex_a_in_the_elf_dump(&fixture, &boot);
        let owner_off = prog
            .debug
            .member("mutex", "owner")
            .expect("mutex.owner")
            .offset;
        let phys = prog
            .space
            .translate(kpeek::addr::VirtAddr(held.addr + owner_off))
            .expect("the mutex is mapped")
            .0;
        let bytes = std::fs::read(&path).expect("dump");
        let at = common::elf_file_offset(&bytes, phys);
        let dir = tempfile::tempdir().expect("tempdir");
        for garbage in [0xdead_4ead_0000_0000u64 | 1, held.addr] {
            let mut copy = bytes.clone();
            copy[at..at + 8].copy_from_slice(&garbage.to_le_bytes());
            let damaged = dir.path().join("vmcore.elf");
            std::fs::write(&damaged, &copy).expect("write the copy");
            let r = report(&open(&fixture, &damaged));
            let waiters: Vec<_> = r
                .groups
                .iter()
                .flat_map(|g| &g.tasks)
                .filter(|t| t.waits.as_ref().is_some_and(|w| w.lock.0 == held.addr))
                .collect();
            assert_eq!(waiters.len(), 4, "abba_2 and the three readers");
            for t in waiters {
                assert_eq!(
                    t.waits.as_ref().map(|w| &w.owner),
                    Some(&Owner::Unknown {
                        raw: format!("{garbage:#x}")
                    })
                );
            }
            // With one owner unknown, the ABBA cycle cannot be closed.
            assert!(r.cycles.is_empty(), "{:?}", r.cycles);
        }
    }
}

/// A damaged wait list (the ABBA mutex's `wait_list.next` pointing at
/// itself, then at garbage): the walk refuses the inconsistent links, the
/// waiters are still listed, no lock is made up for them, and it ends.
#[test]
fn a_damaged_wait_list_is_not_followed() {
    for (fixture, boot) in hung_boots("hung") {
        let (held, path, prog) = mutex_a_in_the_elf_dump(&fixture, &boot);
        let head = held.addr
            + prog
                .debug
                .member("mutex", "wait_list")
                .expect("mutex.wait_list")
                .offset;
        let phys = prog
            .space
            .translate(kpeek::addr::VirtAddr(head))
            .expect("the mutex is mapped")
            .0;
        let bytes = std::fs::read(&path).expect("dump");
        let at = common::elf_file_offset(&bytes, phys);
        let dir = tempfile::tempdir().expect("tempdir");
        for garbage in [head, 0xffff_8880_dead_0000] {
            let mut copy = bytes.clone();
            copy[at..at + 8].copy_from_slice(&garbage.to_le_bytes());
            let damaged = dir.path().join("vmcore.elf");
            std::fs::write(&damaged, &copy).expect("write the copy");
            let r = report(&open(&fixture, &damaged));
            let waiters: Vec<i32> = module_records(&boot.truth())
                .iter()
                .filter(|w| !w.holds && w.addr == held.addr)
                .map(|w| w.pid)
                .collect();
            assert_eq!(waiters.len(), 4);
            for pid in waiters {
                let t = r
                    .groups
                    .iter()
                    .flat_map(|g| &g.tasks)
                    .find(|t| t.pid == pid)
                    .expect("still listed");
                // Either no lock, or the right one (a waiter whose own links
                // do not pass through the damaged one).
                if let Some(w) = &t.waits {
                    assert_eq!(w.lock.0, held.addr, "pid {pid}");
                }
            }
            assert!(r.cycles.len() <= 1);
        }
    }
}

/// On the older fixtures (no hung boots) the vforker, in D state, waits on
/// the `vfork` completion on its own stack (kernel_clone's).
#[test]
fn the_vforker_waits_on_a_completion_on_its_own_stack() {
    for fixture in Fixture::all() {
        let boot = fixture.boot("qemu-vmcoreinfo");
        let truth = boot.truth();
        let vforker = truth
            .tasks
            .iter()
            .find(|t| t.comm == "kpw-vforker" && t.state() == 'D')
            .expect("the vforker is in D");
        let (path, _) = boot.dumps().into_iter().next().expect("a dump");
        let r = report(&open(&fixture, &path));
        let t = r
            .groups
            .iter()
            .flat_map(|g| &g.tasks)
            .find(|t| i64::from(t.pid) == vforker.tid)
            .expect("the vforker is listed");
        let w = t.waits.as_ref().expect("a wait");
        assert_eq!(w.kind, LockKind::Completion);
        assert_eq!(
            w.symbol.as_deref(),
            Some(format!("stack of pid {}", vforker.tid).as_str())
        );
        assert_eq!(w.owner, Owner::NotTracked);
    }
}
