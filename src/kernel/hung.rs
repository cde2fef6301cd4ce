//! Hung tasks: who is blocked, since when, on what, held by whom.
//!
//! For each blocked task (D state; every sleeping one on request) this
//! finds the lock it sleeps on the way the kernel's own sleeping code left
//! it: the waiter each slow path puts on the sleeper's stack
//! (`struct mutex_waiter` in `__mutex_lock_common()`, `struct rwsem_waiter`
//! in `rwsem_down_{read,write}_slowpath()`, `struct semaphore_waiter` in
//! `__down_common()`, `struct swait_queue` in `do_wait_for_common()`) has
//! `.task == current` and its `.list` linked into the lock's `wait_list`.
//! So: every word of the task's stack equal to its `task_struct`, taken as
//! a waiter's `.task`, whose `.list` is a consistent `list_head` whose
//! circle holds exactly one node outside every task's stack: that node is
//! the lock's `wait_list`, and the lock is `container_of` it. The owner
//! of a mutex or rw_semaphore is its `owner` word with the flag bits
//! masked, accepted only if it is a task of the task list: anything else
//! is "owner unknown" with the raw value, never dereferenced.
//!
//! How long a task has been blocked comes from the hung-task detector's
//! own bookkeeping (`CONFIG_DETECT_HUNG_TASK`: `last_switch_count`,
//! `last_switch_time` in jiffies, as `check_hung_task()` uses them) and
//! from the scheduler clock (`rq->clock_task - se.exec_start`: the time
//! since the task last ran).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::program::Program;
use super::stack::{StackStart, Unwinder};
use super::task::{list_for_each, Task, TaskList};
use crate::addr::{LinkAddr, VirtAddr};

/// What kind of lock a task waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// `struct mutex` (`mutex_lock()` and friends).
    Mutex,
    /// `struct rw_semaphore`, for reading (`down_read()`).
    RwsemRead,
    /// `struct rw_semaphore`, for writing (`down_write()`).
    RwsemWrite,
    /// `struct semaphore` (`down()`).
    Semaphore,
    /// `struct completion` (`wait_for_completion()`).
    Completion,
}

impl LockKind {
    /// The C type of the lock.
    pub fn type_name(self) -> &'static str {
        match self {
            LockKind::Mutex => "mutex",
            LockKind::RwsemRead | LockKind::RwsemWrite => "rw_semaphore",
            LockKind::Semaphore => "semaphore",
            LockKind::Completion => "completion",
        }
    }

    /// For people: "mutex", "rw_semaphore (read)", ...
    pub fn describe(self) -> &'static str {
        match self {
            LockKind::Mutex => "mutex",
            LockKind::RwsemRead => "rw_semaphore (read)",
            LockKind::RwsemWrite => "rw_semaphore (write)",
            LockKind::Semaphore => "semaphore",
            LockKind::Completion => "completion",
        }
    }

    /// The kind a sleeping function's name says, if it is one of the
    /// slow paths that leave a waiter on the stack.
    fn of_function(name: &str) -> Option<LockKind> {
        let name = name.split('.').next().unwrap_or(name);
        if name.starts_with("rt_mutex") || name.starts_with("rtlock") {
            return None;
        }
        Some(match name {
            n if n.contains("mutex_lock") => LockKind::Mutex,
            "rwsem_down_read_slowpath"
            | "down_read"
            | "down_read_killable"
            | "down_read_interruptible"
            | "__down_read"
            | "__down_read_common" => LockKind::RwsemRead,
            "rwsem_down_write_slowpath"
            | "down_write"
            | "down_write_killable"
            | "__down_write"
            | "__down_write_common" => LockKind::RwsemWrite,
            "__down_common"
            | "__down"
            | "__down_interruptible"
            | "__down_killable"
            | "__down_timeout"
            | "down"
            | "down_interruptible"
            | "down_killable"
            | "down_timeout" => LockKind::Semaphore,
            n if n.contains("wait_for_common") || n.starts_with("wait_for_completion") => {
                LockKind::Completion
            }
            _ => return None,
        })
    }
}

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    /// A task of the task list.
    Task {
        /// Its pid.
        pid: i32,
        /// Its comm.
        comm: String,
        /// Its state letter.
        state: char,
        /// Its `task_struct`.
        task: VirtAddr,
    },
    /// An rw_semaphore held by readers (`RWSEM_READER_OWNED`): the owner
    /// word names at most the last reader, as a hint.
    Readers {
        /// The owner word.
        raw: String,
    },
    /// The owner word, flags masked, is not a task of the task list (the
    /// owner exited, or the dump is damaged).
    Unknown {
        /// The owner word as read.
        raw: String,
    },
    /// Nobody: the owner word is zero (a hand-over in progress).
    None,
    /// The lock's type has no owner (semaphore, completion).
    NotTracked,
}

/// The lock a task sleeps on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// Its type, and for an rw_semaphore how the task wants it.
    pub kind: LockKind,
    /// Its address.
    pub lock: VirtAddr,
    /// `symbol+0xoff [module]` when the lock is a kernel or module
    /// variable; `stack of pid N` when it lives on a task's stack.
    pub symbol: Option<String>,
    /// Who holds it.
    pub owner: Owner,
    /// The waiter found on the task's stack (its `list` member).
    pub waiter: VirtAddr,
}

/// How long a task has been blocked.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Blocked {
    /// Since the task last ran: the runqueue clock (`rq->clock_task` of
    /// its CPU) minus `se.exec_start`, in nanoseconds.
    pub since_last_ran_ns: Option<u64>,
    /// The hung-task detector's view: `jiffies - last_switch_time`, in
    /// seconds, when the detector has seen the task with its current
    /// switch count (`last_switch_count == nvcsw + nivcsw`).
    pub detector_secs: Option<u64>,
    /// The detector would report it: `detector_secs` is at least
    /// `hung_task_timeout_secs` and the task sleeps uninterruptibly
    /// without `TASK_WAKEKILL`/`TASK_NOLOAD`, as `check_hung_task()` asks.
    pub hung: bool,
}

/// One blocked task.
#[derive(Clone, Debug, Serialize)]
pub struct BlockedTask {
    /// Thread id.
    pub pid: i32,
    /// Process id.
    pub tgid: i32,
    /// `comm`.
    pub comm: String,
    /// State letter.
    pub state: char,
    /// The `task_struct`.
    pub task: VirtAddr,
    /// Kernel thread.
    pub kthread: bool,
    /// How long.
    pub blocked: Blocked,
    /// What it waits on, when it sleeps in a lock's slow path.
    pub waits: Option<Wait>,
    /// The function it sleeps in (the first frame outside the scheduler).
    pub wchan: Option<String>,
    /// Its stack as `/proc/PID/stack` shows it.
    pub stack: Vec<String>,
}

/// The hung-task facts of a kernel.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Hung {
    /// The tasks asked for (D state, or every sleeping one), in task-list order.
    pub tasks: Vec<BlockedTask>,
    /// `sysctl_hung_task_timeout_secs`, if the kernel has the detector.
    pub timeout_secs: Option<u64>,
    /// `HZ`, from `tick_nsec`.
    pub hz: Option<u64>,
    /// Owners that are not among `tasks` (they do not sleep in D), by pid:
    /// their state and stack.
    pub owners: Vec<BlockedTask>,
    /// Deadlock cycles: each the pids of its tasks, in wait order (each
    /// waits on a lock the next one holds; the last on the first's).
    pub cycles: Vec<Vec<i32>>,
    /// What could not be used.
    pub notices: Vec<String>,
}

/// The counts, for `kpeek info` too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HungSummary {
    /// Tasks in D state.
    pub d_state: usize,
    /// Tasks listed (D, or every sleeping one with `--all-blocked`).
    pub listed: usize,
    /// Tasks the hung-task detector would report (blocked for at least
    /// `hung_task_timeout_secs` by its own bookkeeping).
    pub hung: usize,
    /// The longest blocked time the detector measured, in seconds.
    pub longest_secs: Option<u64>,
    /// Deadlock cycles.
    pub cycles: usize,
    /// The hung tasks (pid, comm), at most 16.
    pub hung_tasks: Vec<(i32, String)>,
}

/// Which tasks `hung` looks at.
#[derive(Clone, Copy, Debug, Default)]
pub struct HungQuery {
    /// Every sleeping task (S, D, I), not only D.
    pub all_blocked: bool,
}

/// Member offsets of one waiter type.
#[derive(Clone, Copy, Debug)]
struct WaiterLayout {
    list: u64,
    task: u64,
    /// From the lock to its `wait_list` head.
    head_in_lock: u64,
    /// From the lock to its owner word.
    owner_in_lock: Option<u64>,
}

fn layout(prog: &Program, kind: LockKind) -> Option<WaiterLayout> {
    let d = &prog.debug;
    let off = |t: &str, m: &str| d.member(t, m).ok().map(|m| m.offset);
    Some(match kind {
        LockKind::Mutex => WaiterLayout {
            list: off("mutex_waiter", "list")?,
            task: off("mutex_waiter", "task")?,
            head_in_lock: off("mutex", "wait_list")?,
            owner_in_lock: off("mutex", "owner"),
        },
        LockKind::RwsemRead | LockKind::RwsemWrite => WaiterLayout {
            list: off("rwsem_waiter", "list")?,
            task: off("rwsem_waiter", "task")?,
            head_in_lock: off("rw_semaphore", "wait_list")?,
            owner_in_lock: off("rw_semaphore", "owner"),
        },
        LockKind::Semaphore => WaiterLayout {
            list: off("semaphore_waiter", "list")?,
            task: off("semaphore_waiter", "task")?,
            head_in_lock: off("semaphore", "wait_list")?,
            owner_in_lock: None,
        },
        LockKind::Completion => WaiterLayout {
            list: off("swait_queue", "task_list")?,
            task: off("swait_queue", "task")?,
            head_in_lock: off("completion", "wait.task_list")?,
            owner_in_lock: None,
        },
    })
}

/// Flag bits in the low bits of `mutex.owner` (`MUTEX_FLAGS`, 0x07 since
/// 4.10) and `rw_semaphore.owner` (`RWSEM_OWNER_FLAGS_MASK`, 0x07 at most).
const OWNER_FLAGS: u64 = 0x07;
/// `RWSEM_READER_OWNED`.
const RWSEM_READER_OWNED: u64 = 0x01;
/// `TASK_UNINTERRUPTIBLE`, `TASK_WAKEKILL`, `TASK_NOLOAD`.
const TASK_UNINTERRUPTIBLE: u64 = 0x2;
const TASK_WAKEKILL: u64 = 0x100;
const TASK_NOLOAD: u64 = 0x400;

/// Extra per-task facts read only for the tasks looked at.
struct TimeOffsets {
    state: Option<(u64, u64)>,
    last_switch_count: Option<u64>,
    last_switch_time: Option<u64>,
    exec_start: Option<u64>,
}

/// Analyse the blocked tasks of `list` (a brief or full task walk).
pub fn hung(prog: &Program, list: &TaskList, unwinder: &Unwinder<'_>, query: HungQuery) -> Hung {
    let mut out = Hung::default();
    let d = &prog.debug;
    let off = |t: &str, m: &str| d.member(t, m).ok().map(|m| m.offset);
    let times = TimeOffsets {
        state: d
            .member("task_struct", "__state")
            .or_else(|_| d.member("task_struct", "state"))
            .ok()
            .map(|m| (m.offset, m.size.min(8))),
        last_switch_count: off("task_struct", "last_switch_count"),
        last_switch_time: off("task_struct", "last_switch_time"),
        exec_start: off("task_struct", "se.exec_start"),
    };
    out.timeout_secs = prog
        .symbol("sysctl_hung_task_timeout_secs")
        .and_then(|a| prog.read_u64(a))
        .ok();
    // TICK_NSEC = (NSEC_PER_SEC + HZ/2) / HZ, kept by NTP in tick_nsec.
    out.hz = prog
        .symbol("tick_nsec")
        .and_then(|a| prog.read_u64(a))
        .ok()
        .filter(|&t| t > 0)
        .map(|t| (1_000_000_000 + t / 2) / t);
    let jiffies = ["jiffies_64", "jiffies"]
        .iter()
        .find_map(|s| prog.symbol(s).and_then(|a| prog.read_u64(a)).ok());
    let clock_task = off("rq", "clock_task");
    let rq_clock = |cpu: u32| -> Option<u64> {
        let rq = prog.per_cpu("runqueues", cpu).ok()?;
        prog.read_u64(VirtAddr(rq.0 + clock_task?)).ok()
    };

    // Every task's stack, to tell a waiter (on a stack) from a lock.
    let size = unwinder.thread_size();
    let mut stacks: Vec<(u64, i32)> = list
        .tasks
        .iter()
        .filter(|t| t.stack.0 != 0)
        .map(|t| (t.stack.0, t.pid))
        .collect();
    stacks.sort_unstable();
    let stack_of = |addr: u64| -> Option<i32> {
        let pos = stacks.partition_point(|&(s, _)| s <= addr);
        let &(s, pid) = stacks.get(pos.checked_sub(1)?)?;
        (addr - s < size).then_some(pid)
    };
    let by_addr: HashMap<u64, &Task> = list.tasks.iter().map(|t| (t.task.0, t)).collect();

    let wanted = |t: &Task| {
        t.pid != 0
            && !t.idle
            && match t.state {
                'D' => true,
                'S' | 'I' => query.all_blocked,
                _ => false,
            }
    };
    let describe = |t: &Task| -> BlockedTask {
        let stack = unwinder.task_stack(t);
        let lines = unwinder.proc_stack(&stack);
        let names: Vec<(String, u64)> = stack
            .frames
            .iter()
            .filter_map(|f| {
                unwinder
                    .symbolize(f.pc.0, f.is_return_address())
                    .map(|s| (s.function, f.sp.0))
            })
            .collect();
        let wchan = stack
            .frames
            .iter()
            .find(|f| !unwinder.in_sched_functions(f.pc.0))
            .and_then(|f| unwinder.symbolize(f.pc.0, f.is_return_address()))
            .map(|s| s.function);
        let kind = names.iter().find_map(|(n, _)| LockKind::of_function(n));
        let sp = match stack.start {
            StackStart::Switched => stack.frames.first().map(|f| f.sp.0),
            StackStart::Cpu { .. } => None,
        };
        let waits = match (kind, sp) {
            (Some(kind), Some(sp)) => {
                find_wait(prog, t, kind, sp, size, &stack_of, &by_addr, unwinder)
            }
            _ => None,
        };
        // The detector's bookkeeping and the scheduler clock.
        let word = |o: Option<u64>, len: u64| -> Option<u64> {
            let mut b = [0u8; 8];
            prog.read(VirtAddr(t.task.0 + o?), &mut b[..len as usize])
                .ok()?;
            Some(u64::from_le_bytes(b))
        };
        let state_word = times.state.and_then(|(o, s)| word(Some(o), s));
        let mut blocked = Blocked::default();
        if let (Some(exec), Some(now)) = (
            word(times.exec_start, 8),
            t.cpu
                .and_then(rq_clock)
                .or_else(|| prog.cpus().ok()?.into_iter().filter_map(rq_clock).max()),
        ) {
            blocked.since_last_ran_ns = now.checked_sub(exec);
        }
        if let (Some(count), Some(since), Some(now), Some(hz), Some((v, i))) = (
            word(times.last_switch_count, 8),
            word(times.last_switch_time, 8),
            jiffies,
            out.hz,
            t.switches,
        ) {
            if count == v.wrapping_add(i) && since != 0 {
                let secs = now.wrapping_sub(since) / hz;
                // More than a year of jiffies is not a measurement.
                if secs < 366 * 86400 {
                    blocked.detector_secs = Some(secs);
                }
            }
        }
        blocked.hung = match (blocked.detector_secs, out.timeout_secs, state_word) {
            (Some(s), Some(timeout), Some(st)) => {
                timeout > 0
                    && s >= timeout
                    && st & TASK_UNINTERRUPTIBLE != 0
                    && st & (TASK_WAKEKILL | TASK_NOLOAD) == 0
            }
            _ => false,
        };
        BlockedTask {
            pid: t.pid,
            tgid: t.tgid,
            comm: t.comm.clone(),
            state: t.state,
            task: t.task,
            kthread: t.kthread,
            blocked,
            waits,
            wchan,
            stack: lines,
        }
    };
    for t in list.tasks.iter().filter(|t| wanted(t)) {
        out.tasks.push(describe(t));
    }
    // Owners that are not among the tasks: their state and stack.
    let mut extra: BTreeMap<i32, BlockedTask> = BTreeMap::new();
    for w in out.tasks.iter().filter_map(|t| t.waits.as_ref()) {
        if let Owner::Task { pid, task, .. } = &w.owner {
            if !out.tasks.iter().any(|t| t.pid == *pid) && !extra.contains_key(pid) {
                if let Some(owner) = by_addr.get(&task.0) {
                    extra.insert(*pid, describe(owner));
                }
            }
        }
    }
    out.owners = extra.into_values().collect();
    out.cycles = cycles(&out.tasks, &out.owners);
    out
}

/// The lock `t` sleeps on: its waiter on the stack, `sp..stack+size`.
#[allow(clippy::too_many_arguments)]
fn find_wait(
    prog: &Program,
    t: &Task,
    kind: LockKind,
    sp: u64,
    size: u64,
    stack_of: &dyn Fn(u64) -> Option<i32>,
    by_addr: &HashMap<u64, &Task>,
    unwinder: &Unwinder<'_>,
) -> Option<Wait> {
    let l = layout(prog, kind)?;
    let top = t.stack.0.checked_add(size)?;
    if sp < t.stack.0 || sp >= top {
        return None;
    }
    let sp = sp & !7;
    let bytes = prog.read_vec(VirtAddr(sp), (top - sp) as usize).ok()?;
    for (i, word) in bytes.chunks_exact(8).enumerate() {
        if u64::from_le_bytes(word.try_into().ok()?) != t.task.0 {
            continue;
        }
        let at = sp + 8 * i as u64;
        let Some(waiter) = at.checked_sub(l.task).and_then(|b| b.checked_add(l.list)) else {
            continue;
        };
        // The waiter's list_head must be linked both ways.
        let (Ok(next), Ok(prev)) = (
            prog.read_u64(VirtAddr(waiter)),
            prog.read_u64(VirtAddr(waiter.wrapping_add(8))),
        ) else {
            continue;
        };
        if next == waiter
            || prog.read_u64(VirtAddr(next.wrapping_add(8))).ok() != Some(waiter)
            || prog.read_u64(VirtAddr(prev)).ok() != Some(waiter)
        {
            continue;
        }
        let (nodes, warning) = list_for_each(prog, VirtAddr(waiter));
        if warning.is_some() {
            continue;
        }
        // The other waiters are on stacks and point to their tasks; the one
        // node that is not a waiter is the lock's wait_list (which may be on
        // a stack itself: an on-stack completion, as vfork's).
        let is_waiter = |n: u64| {
            stack_of(n).is_some()
                && n.checked_sub(l.list)
                    .and_then(|b| b.checked_add(l.task))
                    .and_then(|a| prog.read_u64(VirtAddr(a)).ok())
                    .is_some_and(|t| by_addr.contains_key(&t))
        };
        let heads: Vec<u64> = nodes
            .iter()
            .map(|n| n.0)
            .filter(|&n| !is_waiter(n))
            .collect();
        let [head] = heads[..] else {
            continue;
        };
        let lock = head.wrapping_sub(l.head_in_lock);
        let owner = match l.owner_in_lock {
            None => Owner::NotTracked,
            Some(o) => match prog.read_u64(VirtAddr(lock.wrapping_add(o))) {
                Err(_) => Owner::Unknown {
                    raw: "unreadable".to_owned(),
                },
                Ok(raw) => owner_of(kind, raw, by_addr),
            },
        };
        return Some(Wait {
            kind,
            lock: VirtAddr(lock),
            symbol: lock_symbol(prog, lock, stack_of, unwinder),
            owner,
            waiter: VirtAddr(waiter),
        });
    }
    None
}

/// The owner word of a mutex or rw_semaphore, as a task if it is one.
fn owner_of(kind: LockKind, raw: u64, by_addr: &HashMap<u64, &Task>) -> Owner {
    let rwsem = matches!(kind, LockKind::RwsemRead | LockKind::RwsemWrite);
    if rwsem && raw & RWSEM_READER_OWNED != 0 {
        return Owner::Readers {
            raw: format!("{raw:#x}"),
        };
    }
    let addr = raw & !OWNER_FLAGS;
    if addr == 0 {
        return Owner::None;
    }
    match by_addr.get(&addr) {
        Some(t) => Owner::Task {
            pid: t.pid,
            comm: t.comm.clone(),
            state: t.state,
            task: t.task,
        },
        None => Owner::Unknown {
            raw: format!("{raw:#x}"),
        },
    }
}

/// A lock's name: a kernel or module variable, or the stack it lives on.
fn lock_symbol(
    prog: &Program,
    lock: u64,
    stack_of: &dyn Fn(u64) -> Option<i32>,
    unwinder: &Unwinder<'_>,
) -> Option<String> {
    let name = |n: &str, off: u64| {
        if off == 0 {
            n.to_owned()
        } else {
            format!("{n}+{off:#x}")
        }
    };
    let kaslr = prog.located.layout.kaslr_offset;
    if let Some((sym, off)) = prog.debug.symbol_at(LinkAddr(lock.wrapping_sub(kaslr))) {
        if off < sym.size || (sym.size == 0 && off == 0) {
            return Some(name(&sym.name, off));
        }
    }
    if let Some((sym, off, module)) = unwinder.module_object_at(lock) {
        return Some(format!("{} [{module}]", name(&sym, off)));
    }
    stack_of(lock).map(|pid| format!("stack of pid {pid}"))
}

/// Deadlock cycles in the wait-for graph: task → lock → owner task.
fn cycles(tasks: &[BlockedTask], owners: &[BlockedTask]) -> Vec<Vec<i32>> {
    let waits_for: HashMap<i32, i32> = tasks
        .iter()
        .chain(owners)
        .filter_map(|t| match &t.waits.as_ref()?.owner {
            Owner::Task { pid, .. } => Some((t.pid, *pid)),
            _ => None,
        })
        .collect();
    let mut found: Vec<Vec<i32>> = Vec::new();
    let mut done: std::collections::HashSet<i32> = std::collections::HashSet::new();
    let mut starts: Vec<i32> = waits_for.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        let mut path: Vec<i32> = Vec::new();
        let mut pid = start;
        while !done.contains(&pid) {
            if let Some(at) = path.iter().position(|&p| p == pid) {
                let mut cycle = path[at..].to_vec();
                // The smallest pid first, so a cycle is named one way.
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| **p)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                found.push(cycle);
                break;
            }
            path.push(pid);
            match waits_for.get(&pid) {
                Some(&next) => pid = next,
                None => break,
            }
        }
        done.extend(path);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(pid: i32, owner: Option<i32>) -> BlockedTask {
        BlockedTask {
            pid,
            tgid: pid,
            comm: format!("t{pid}"),
            state: 'D',
            task: VirtAddr(0x1000 * pid as u64),
            kthread: false,
            blocked: Blocked::default(),
            waits: owner.map(|o| Wait {
                kind: LockKind::Mutex,
                lock: VirtAddr(0x10),
                symbol: None,
                owner: Owner::Task {
                    pid: o,
                    comm: String::new(),
                    state: 'D',
                    task: VirtAddr(0x1000 * o as u64),
                },
                waiter: VirtAddr(0),
            }),
            wchan: None,
            stack: Vec::new(),
        }
    }

    #[test]
    fn cycles_are_found_once_each_smallest_pid_first() {
        // 5 -> 3 -> 4 -> 3 (a cycle of two with a tail), 7 -> 8 -> 7, 9 -> 10 (no cycle).
        let tasks = vec![
            task(5, Some(3)),
            task(3, Some(4)),
            task(4, Some(3)),
            task(8, Some(7)),
            task(7, Some(8)),
            task(9, Some(10)),
        ];
        assert_eq!(cycles(&tasks, &[]), vec![vec![3, 4], vec![7, 8]]);
    }

    #[test]
    fn a_task_waiting_on_itself_is_a_cycle_of_one() {
        assert_eq!(cycles(&[task(2, Some(2))], &[]), vec![vec![2]]);
    }

    #[test]
    fn owner_words_mask_flags_and_never_guess() {
        let t = Task::default_for_tests(0xffff_8880_0100_0000, 42, "owner");
        let by_addr: HashMap<u64, &Task> = [(t.task.0, &t)].into_iter().collect();
        assert!(matches!(
            owner_of(LockKind::Mutex, 0xffff_8880_0100_0003, &by_addr),
            Owner::Task { pid: 42, .. }
        ));
        assert_eq!(
            owner_of(LockKind::Mutex, 0xdead_beef_0000_0001, &by_addr),
            Owner::Unknown {
                raw: "0xdeadbeef00000001".to_owned()
            }
        );
        assert_eq!(owner_of(LockKind::Mutex, 0x1, &by_addr), Owner::None);
        assert!(matches!(
            owner_of(LockKind::RwsemRead, 0xffff_8880_0100_0001, &by_addr),
            Owner::Readers { .. }
        ));
    }

    #[test]
    fn slow_path_names_give_the_lock_kind() {
        assert_eq!(
            LockKind::of_function("__mutex_lock.constprop.0"),
            Some(LockKind::Mutex)
        );
        assert_eq!(
            LockKind::of_function("rwsem_down_read_slowpath"),
            Some(LockKind::RwsemRead)
        );
        assert_eq!(
            LockKind::of_function("wait_for_completion_state"),
            Some(LockKind::Completion)
        );
        assert_eq!(LockKind::of_function("rt_mutex_slowlock"), None);
        assert_eq!(LockKind::of_function("schedule"), None);
    }
}
