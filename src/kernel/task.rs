//! Tasks: `for_each_process`, `for_each_thread`, the per-CPU idle tasks,
//! and what `/proc/PID/stat` would say about each.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::program::Program;
use crate::addr::VirtAddr;
use crate::debuginfo::KernelDebugInfo;
use crate::Result;

/// `PF_KTHREAD`: the task is a kernel thread (stable since 2.6.27).
pub const PF_KTHREAD: u32 = 0x0020_0000;
/// No list in a kernel is this long; past it a walk stops with a warning.
const LIST_CAP: usize = 1 << 22;

/// Something wrong found on the way; the walk went on where it could.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable identifier: `bad_list`, `list_cycle`, `unreadable_task`, ...
    pub code: &'static str,
    /// What happened.
    pub message: String,
    /// Where.
    pub address: Option<VirtAddr>,
}

impl Warning {
    fn new(code: &'static str, message: String, address: Option<VirtAddr>) -> Warning {
        Warning {
            code,
            message,
            address,
        }
    }
}

/// `list_for_each_entry`: the entries of a circular `list_head` list, each
/// as the address of its `list_head` (subtract the member offset for
/// `container_of`). Checks `next->prev == cur`, stops at cycles, unreadable
/// links and `LIST_CAP` entries, with a warning naming the bad link.
pub fn list_for_each(prog: &Program, head: VirtAddr) -> (Vec<VirtAddr>, Option<Warning>) {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut cur = head;
    loop {
        let next = match prog.read_u64(cur) {
            Ok(n) => VirtAddr(n),
            Err(e) => {
                let w = Warning::new(
                    "bad_list",
                    format!("list at {head}: cannot follow {cur}->next: {e}"),
                    Some(cur),
                );
                return (out, Some(w));
            }
        };
        if next == head {
            return (out, None);
        }
        match prog.read_u64(VirtAddr(next.0.wrapping_add(8))) {
            Ok(prev) if prev == cur.0 => {}
            Ok(prev) => {
                let w = Warning::new(
                    "bad_list",
                    format!("list at {head}: {cur}->next is {next}, but its prev is {prev:#x}"),
                    Some(next),
                );
                return (out, Some(w));
            }
            Err(e) => {
                let w = Warning::new(
                    "bad_list",
                    format!("list at {head}: {cur}->next is {next}, unreadable: {e}"),
                    Some(next),
                );
                return (out, Some(w));
            }
        }
        if !seen.insert(next) || out.len() >= LIST_CAP {
            let w = Warning::new(
                "list_cycle",
                format!("list at {head} loops back to {next} without reaching its head"),
                Some(next),
            );
            return (out, Some(w));
        }
        out.push(next);
        cur = next;
    }
}

/// The offsets this module needs, resolved once from the DWARF.
#[derive(Clone, Debug)]
struct TaskOffsets {
    tasks: u64,
    pid: u64,
    tgid: u64,
    comm: u64,
    flags: u64,
    state: (u64, u64),
    exit_state: u64,
    real_parent: u64,
    stack: u64,
    mm: u64,
    signal: u64,
    real_cred: u64,
    cpu: Option<u64>,
    on_cpu: Option<u64>,
    /// `nvcsw`, `nivcsw`.
    switches: Option<(u64, u64)>,
    /// `signal->thread_head` + `task->thread_node` (3.14+), else `thread_group`.
    threads: Threads,
    signal_nr_threads: u64,
    cred_uid: u64,
    cred_euid: u64,
    rq_curr: u64,
    rq_idle: u64,
    /// The span of task_struct read per task.
    span: (u64, u64),
}

#[derive(Clone, Copy, Debug)]
enum Threads {
    ThreadHead { signal_head: u64, node: u64 },
    ThreadGroup { node: u64 },
}

impl TaskOffsets {
    fn resolve(d: &KernelDebugInfo, detail: Detail) -> Result<TaskOffsets> {
        let off = |ty: &str, m: &str| d.member(ty, m).map(|m| m.offset);
        // __state since 5.14 (2f064a59a11f), state before.
        let state = d
            .member("task_struct", "__state")
            .or_else(|_| d.member("task_struct", "state"))?;
        // task_cpu(): thread_info.cpu (5.16+ with THREAD_INFO_IN_TASK), else task->cpu.
        let cpu = off("task_struct", "thread_info.cpu")
            .or_else(|_| off("task_struct", "cpu"))
            .ok();
        let threads = match (
            off("signal_struct", "thread_head"),
            off("task_struct", "thread_node"),
        ) {
            (Ok(signal_head), Ok(node)) => Threads::ThreadHead { signal_head, node },
            _ => Threads::ThreadGroup {
                node: off("task_struct", "thread_group")?,
            },
        };
        let mut l = TaskOffsets {
            tasks: off("task_struct", "tasks")?,
            pid: off("task_struct", "pid")?,
            tgid: off("task_struct", "tgid")?,
            comm: off("task_struct", "comm")?,
            flags: off("task_struct", "flags")?,
            state: (state.offset, state.size),
            exit_state: off("task_struct", "exit_state")?,
            real_parent: off("task_struct", "real_parent")?,
            stack: off("task_struct", "stack")?,
            mm: off("task_struct", "mm")?,
            signal: off("task_struct", "signal")?,
            real_cred: off("task_struct", "real_cred")?,
            cpu,
            on_cpu: off("task_struct", "on_cpu").ok(),
            switches: off("task_struct", "nvcsw")
                .and_then(|v| Ok((v, off("task_struct", "nivcsw")?)))
                .ok(),
            threads,
            signal_nr_threads: off("signal_struct", "nr_threads")?,
            cred_uid: off("cred", "uid")?,
            cred_euid: off("cred", "euid")?,
            rq_curr: off("rq", "curr")?,
            rq_idle: off("rq", "idle")?,
            span: (0, 0),
        };
        // What the walk reads of each task: the fields kept, and for
        // names only what identifies a thread and links it.
        let names = [l.tasks, l.pid, l.tgid, l.comm, l.signal];
        let brief = [
            l.flags,
            l.state.0,
            l.exit_state,
            l.real_parent,
            l.stack,
            l.mm,
            l.real_cred,
        ];
        let wide = match detail {
            Detail::Names => &[][..],
            Detail::Brief | Detail::Full => &brief[..],
        };
        let fields = names.iter().chain(wide);
        let mut lo = *fields.clone().min().unwrap_or(&0);
        let mut hi = fields.max().unwrap_or(&0) + 16;
        if detail != Detail::Names {
            let switches = l.switches.map_or([None, None], |(v, i)| [Some(v), Some(i)]);
            for o in [l.cpu, l.on_cpu].into_iter().chain(switches).flatten() {
                lo = lo.min(o);
                hi = hi.max(o + 8);
            }
        }
        {
            let (Threads::ThreadHead { node, .. } | Threads::ThreadGroup { node }) = l.threads;
            lo = lo.min(node);
            hi = hi.max(node + 16);
        }
        l.span = (lo, hi);
        Ok(l)
    }
}

/// How much of each task a walk reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detail {
    /// pid, tgid and comm of every thread of the task lists: nothing else.
    Names,
    /// The `task_struct`s themselves, and the idle tasks and CPUs.
    Brief,
    /// Also what they point to: thread counts, uids, memory, command lines.
    Full,
}

/// Resolves now the types and symbols a task walk needs, so that a later
/// walk starts at once (`kpeek rpc` does this while GDB loads).
pub fn prepare(d: &KernelDebugInfo) -> Result<()> {
    TaskOffsets::resolve(d, Detail::Full)?;
    // The symbol table is read at the first look-up.
    let _ = d.symbol("init_task");
    Ok(())
}

/// One task as kpeek saw it.
#[derive(Clone, Debug, Serialize)]
pub struct Task {
    /// The thread id (`task->pid`).
    pub pid: i32,
    /// The process id (`task->tgid`).
    pub tgid: i32,
    /// `real_parent->tgid` (0 for pid 0 and for children of pid 0).
    pub ppid: i32,
    /// `task->comm`.
    pub comm: String,
    /// The state letter `/proc/PID/stat` shows (R S D T t X Z P I).
    pub state: char,
    /// `PF_KTHREAD`.
    pub kthread: bool,
    /// The `task_struct`.
    pub task: VirtAddr,
    /// `task->stack`: the kernel stack.
    pub stack: VirtAddr,
    /// `task_cpu()`.
    pub cpu: Option<u32>,
    /// `task->on_cpu`: the task is on a CPU right now.
    pub on_cpu: bool,
    /// The task is its CPU's `rq->curr`.
    pub current: bool,
    /// A per-CPU idle task (`swapper/N`).
    pub idle: bool,
    /// Context switches, voluntary and not (`nvcsw`, `nivcsw`; what
    /// `/proc/PID/status` calls `voluntary_ctxt_switches` and
    /// `nonvoluntary_ctxt_switches`).
    pub switches: Option<(u64, u64)>,
    /// Threads in its thread group (`signal->nr_threads`).
    pub nr_threads: Option<u32>,
    /// Real user id.
    pub uid: Option<u32>,
    /// Effective user id.
    pub euid: Option<u32>,
    /// `task->flags`.
    pub flags: u32,
    /// Resident set size in KiB, as `/proc/PID/status` `VmRSS` (user tasks).
    pub rss_kb: Option<u64>,
    /// Virtual size in KiB, as `VmSize` (user tasks).
    pub vsz_kb: Option<u64>,
    /// The command line, read from the process's own memory (`mm->arg_start..arg_end`)
    /// with NULs between the arguments turned into spaces; `None` when those
    /// pages are not in the dump.
    pub cmdline: Option<String>,
    /// `task->mm` (0 for kernel threads and exited tasks).
    #[serde(skip)]
    pub mm: u64,
    #[serde(skip)]
    signal: u64,
    #[serde(skip)]
    cred: u64,
    #[serde(skip)]
    real_parent: u64,
}

/// Every task, in `do_each_thread` order: each process followed by its
/// other threads, `swapper/0` (init_task) first, then the other CPUs' idle
/// tasks at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TaskList {
    /// The tasks.
    pub tasks: Vec<Task>,
    /// What went wrong on the way.
    pub warnings: Vec<Warning>,
}

/// `task_state_to_char()`.
pub fn task_state_to_char(state: u32, exit_state: u32) -> char {
    const TASK_REPORT: u32 = 0x7f;
    const TASK_IDLE: u32 = 0x402;
    const TASK_RTLOCK_WAIT: u32 = 0x1000;
    const TASK_FROZEN: u32 = 0x8000;
    let mut s = (state | exit_state) & TASK_REPORT;
    if state & TASK_IDLE == TASK_IDLE {
        s = TASK_REPORT + 1;
    }
    if state & (TASK_RTLOCK_WAIT | TASK_FROZEN) != 0 {
        s = 2;
    }
    let index = (32 - s.leading_zeros()) as usize;
    b"RSDTtXZPI".get(index).map_or('?', |&c| c as char)
}

fn le(b: &[u8], off: u64, size: u64) -> u64 {
    let off = off as usize;
    let mut v = [0u8; 8];
    let n = (size as usize).min(8);
    if let Some(src) = b.get(off..off + n) {
        v[..n].copy_from_slice(src);
    }
    u64::from_le_bytes(v)
}

/// Walk every task of the kernel, with every detail (thread counts, uids,
/// RSS, VSZ, command lines).
pub fn task_list(prog: &Program) -> Result<TaskList> {
    walk(prog, Detail::Full)
}

/// Walk every task, reading only the `task_struct`s themselves: pid, tgid,
/// ppid, comm, state, flags, CPU, stack. About one memory read per task,
/// which matters when every read is a round trip to a live target.
pub fn task_list_brief(prog: &Program) -> Result<TaskList> {
    walk(prog, Detail::Brief)
}

/// Walk every thread of the task lists (what `do_each_thread` and the
/// kernel's `lx-ps` see), reading of each `task_struct` only the span from
/// its list links to `comm`: the tasks' addresses, pid, tgid and comm are
/// right, every other field is zero (state `R`, not a kernel thread, no
/// ppid), and the other CPUs' idle tasks are not looked for. One smaller
/// read per task, for `lx-ps` over a live link.
pub fn task_list_names(prog: &Program) -> Result<TaskList> {
    walk(prog, Detail::Names)
}

fn walk(prog: &Program, detail: Detail) -> Result<TaskList> {
    let details = detail == Detail::Full;
    let l = TaskOffsets::resolve(&prog.debug, detail)?;
    let mut list = TaskList::default();
    let init_task = prog.symbol("init_task")?;

    // Processes: init_task, then init_task.tasks, one read per task.
    let (lo, hi) = l.span;
    let init_span = prog.read_vec(VirtAddr(init_task.0 + lo), (hi - lo) as usize)?;
    let head_next = le(&init_span, l.tasks - lo, 8);
    let head = VirtAddr(init_task.0 + l.tasks);
    let (entries, warning) = list_for_each_task(prog, &l, head, head, head_next, l.tasks);
    let mut leaders = vec![(init_task, init_span)];
    leaders.extend(entries);
    let broken = warning;

    for (addr, span) in leaders {
        let first = parse_task(&l, addr, &span);
        let threads = threads_of(prog, &l, &first, &span, &mut list.warnings);
        list.tasks.push(first);
        for (t, span) in threads {
            list.tasks.push(parse_task(&l, t, &span));
        }
    }
    if broken.is_none() && list.warnings.is_empty() {
        // A list that is whole but short (`init_task.tasks.next` pointing
        // at itself) looks like a machine with few tasks: count it against
        // the kernel's own count.
        list.warnings
            .extend(thread_count_check(prog, list.tasks.len()));
    }
    list.warnings.extend(broken);
    if let Some(t) = list.tasks.first_mut() {
        t.idle = true;
    }
    if detail == Detail::Names {
        return Ok(list);
    }

    // The per-CPU idle tasks: init_task is CPU 0's; the others are only in the runqueues.
    let mut currents = HashSet::new();
    let mut idle_tasks = Vec::new();
    for cpu in prog.cpus()? {
        let rq = match prog.per_cpu("runqueues", cpu) {
            Ok(rq) => rq,
            Err(e) => {
                list.warnings.push(Warning::new(
                    "bad_runqueue",
                    format!(
                        "CPU {cpu}: no runqueue ({e}): its idle and current tasks are not listed"
                    ),
                    None,
                ));
                continue;
            }
        };
        let curr = prog.read_u64(VirtAddr(rq.0 + l.rq_curr));
        let idle = prog.read_u64(VirtAddr(rq.0 + l.rq_idle));
        match (&curr, &idle) {
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => list.warnings.push(Warning::new(
                "bad_runqueue",
                format!(
                    "CPU {cpu}: its runqueue at {rq} is unreadable ({e}): a bad __per_cpu_offset[{cpu}]? \
                     Its idle and current tasks are not listed"
                ),
                Some(rq),
            )),
        }
        if let Ok(curr) = curr {
            currents.insert(curr);
        }
        match idle {
            Ok(idle) if idle != 0 && idle != init_task.0 => idle_tasks.push(VirtAddr(idle)),
            _ => {}
        }
    }
    for idle in idle_tasks {
        if let Some(mut task) = read_task(prog, &l, idle, &mut list.warnings) {
            task.idle = true;
            list.tasks.push(task);
        }
    }

    // Thread counts and uids, once per signal_struct and cred.
    let mut nr: HashMap<u64, Option<u32>> = HashMap::new();
    let mut ids: HashMap<u64, (Option<u32>, Option<u32>)> = HashMap::new();
    for t in list.tasks.iter_mut().filter(|_| details) {
        if t.signal != 0 {
            t.nr_threads = *nr
                .entry(t.signal)
                .or_insert_with(|| prog.read_u32(VirtAddr(t.signal + l.signal_nr_threads)).ok());
        }
        if t.cred != 0 {
            (t.uid, t.euid) = *ids.entry(t.cred).or_insert_with(|| {
                // One read from uid to euid.
                let (a, b) = (l.cred_uid.min(l.cred_euid), l.cred_uid.max(l.cred_euid));
                match prog.read_vec(VirtAddr(t.cred + a), (b - a + 4) as usize) {
                    Ok(v) => (
                        Some(le(&v, l.cred_uid - a, 4) as u32),
                        Some(le(&v, l.cred_euid - a, 4) as u32),
                    ),
                    Err(_) => (None, None),
                }
            });
        }
    }

    // Memory and command line, once per address space.
    if let Some(ml) = MmLayout::resolve(prog).filter(|_| details) {
        let mut by_mm: HashMap<u64, MmFacts> = HashMap::new();
        for t in list.tasks.iter_mut().filter(|t| t.mm != 0 && !t.kthread) {
            let facts = by_mm.entry(t.mm).or_insert_with(|| ml.read(prog, t.mm));
            (t.rss_kb, t.vsz_kb, t.cmdline) = facts.clone();
        }
    }

    // ppid = real_parent->tgid, mostly from what was already read.
    let tgid_of: HashMap<u64, i32> = list.tasks.iter().map(|t| (t.task.0, t.tgid)).collect();
    for t in &mut list.tasks {
        t.current = currents.contains(&t.task.0);
        t.ppid = if t.pid == 0 {
            0
        } else {
            match tgid_of.get(&t.real_parent) {
                Some(&tgid) => tgid,
                None => prog
                    .read_u32(VirtAddr(t.real_parent + l.tgid))
                    .map_or(-1, |v| v as i32),
            }
        };
    }
    list.warnings.extend(parent_loop_check(&list.tasks));
    Ok(list)
}

/// Processes whose `real_parent` links go round in a loop instead of up to
/// pid 0 (a damaged dump: the kernel never makes one): a warning naming
/// them, since a process tree cannot place them.
fn parent_loop_check(tasks: &[Task]) -> Option<Warning> {
    let parent: HashMap<i32, i32> = tasks
        .iter()
        .filter(|t| t.pid == t.tgid && t.pid != 0)
        .map(|t| (t.pid, t.ppid))
        .collect();
    let mut looped = std::collections::BTreeSet::new();
    for &start in parent.keys() {
        let mut seen = HashSet::new();
        let mut pid = start;
        while let Some(&pp) = parent.get(&pid) {
            if !seen.insert(pid) {
                looped.insert(pid);
                break;
            }
            pid = pp;
        }
    }
    if looped.is_empty() {
        return None;
    }
    let pids: Vec<String> = looped.iter().take(16).map(i32::to_string).collect();
    Some(Warning::new(
        "parent_loop",
        format!(
            "the parent links of {} processes form a loop (pids {}{}): they have no path to pid 0",
            looped.len(),
            pids.join(", "),
            if looped.len() > 16 { ", ..." } else { "" }
        ),
        None,
    ))
}

/// The kernel's `nr_threads` (kernel/fork.c: every thread `copy_process`
/// made with a pid other than 0, so not the idle tasks) against the `walked`
/// tasks (init_task, then every thread of the task lists): a warning when
/// the walk saw fewer. It can see more (a task exiting while the kernel
/// stopped between the two updates); fewer means tasks are missing.
fn thread_count_check(prog: &Program, walked: usize) -> Option<Warning> {
    let sym = prog.symbol("nr_threads").ok()?;
    let nr = prog.read_u32(sym).ok()? as i32;
    let seen = walked.saturating_sub(1); // init_task is not counted
    (nr > 0 && seen < nr as usize).then(|| {
        Warning::new(
            "short_task_list",
            format!(
                "the task list has {seen} threads but nr_threads says {nr}: \
                 {} tasks are missing (a damaged list?)",
                nr as usize - seen
            ),
            Some(sym),
        )
    })
}

/// RSS KiB, VSZ KiB and the command line of one address space.
type MmFacts = (Option<u64>, Option<u64>, Option<String>);

/// Where `mm_struct` keeps what `ps` shows.
struct MmLayout {
    pgd: u64,
    total_vm: u64,
    arg_start: u64,
    arg_end: u64,
    /// Offsets of the RSS counters (file, anon, shmem) and, for 6.2+'s
    /// `percpu_counter`s, of their per-CPU `counters` pointers.
    rss: Vec<(u64, Option<u64>)>,
}

impl MmLayout {
    fn resolve(prog: &Program) -> Option<MmLayout> {
        let d = &prog.debug;
        let off = |m: &str| d.member("mm_struct", m).ok().map(|m| m.offset);
        let members: Vec<i64> = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"]
            .iter()
            .filter_map(|e| d.enumerator(e))
            .collect();
        let rss = members
            .iter()
            .filter_map(|&i| {
                // 6.2+: struct percpu_counter rss_stat[NR_MM_COUNTERS] (count + per-CPU deltas);
                // before: struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }.
                if let Some(count) = off(&format!("rss_stat[{i}].count")) {
                    Some((count, off(&format!("rss_stat[{i}].counters"))))
                } else {
                    off(&format!("rss_stat.count[{i}]")).map(|c| (c, None))
                }
            })
            .collect::<Vec<_>>();
        Some(MmLayout {
            pgd: off("pgd")?,
            total_vm: off("total_vm")?,
            arg_start: off("arg_start")?,
            arg_end: off("arg_end")?,
            rss: if rss.len() == 3 { rss } else { Vec::new() },
        })
    }

    /// (rss KiB, vsz KiB, cmdline) of one address space.
    fn read(&self, prog: &Program, mm: u64) -> MmFacts {
        let at = |o: u64| prog.read_u64(VirtAddr(mm + o)).ok();
        let vsz = at(self.total_vm).map(|pages| pages * 4);
        let mut rss = (!self.rss.is_empty()).then_some(0i64);
        let cpus = prog.cpus().unwrap_or_default();
        for &(count, counters) in &self.rss {
            let mut v = at(count).map(|c| c as i64);
            if let (Some(total), Some(ptr)) = (v.as_mut(), counters.and_then(at)) {
                // percpu_counter_sum(): the global count plus every CPU's s32 delta.
                for &cpu in &cpus {
                    let delta = prog.per_cpu_ptr(ptr, cpu).and_then(|p| prog.read_u32(p));
                    if let Ok(delta) = delta {
                        *total += i64::from(delta as i32);
                    }
                }
            }
            rss = match (rss, v) {
                (Some(r), Some(v)) => Some(r + v.max(0)),
                _ => None,
            };
        }
        let cmdline = (|| {
            let (start, end) = (at(self.arg_start)?, at(self.arg_end)?);
            if end <= start || end - start > 1 << 20 {
                return None;
            }
            let pgd = prog.space.translate(VirtAddr(at(self.pgd)?)).ok()?;
            let mut buf = vec![0u8; (end - start) as usize];
            prog.space.read_via(pgd, VirtAddr(start), &mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf).into_owned();
            Some(text.trim_end_matches('\0').replace('\0', " "))
        })();
        (rss.map(|pages| pages as u64 * 4), vsz, cmdline)
    }
}

/// The other threads of a thread-group leader, with their spans.
fn threads_of(
    prog: &Program,
    l: &TaskOffsets,
    leader: &Task,
    leader_span: &[u8],
    warnings: &mut Vec<Warning>,
) -> Vec<(VirtAddr, Vec<u8>)> {
    let (entries, warning) = match l.threads {
        // signal->thread_head: one read per thread. The leader is normally
        // first on the list (its node's prev is the head): then the walk
        // goes on from its node, which was read with it. Otherwise it
        // starts from the head, one read more.
        Threads::ThreadHead { signal_head, node } => {
            if leader.signal == 0 {
                return Vec::new();
            }
            let head = VirtAddr(leader.signal + signal_head);
            let own = node - l.span.0;
            if le(leader_span, own + 8, 8) == head.0 {
                let next = le(leader_span, own, 8);
                list_for_each_task(prog, l, head, VirtAddr(leader.task.0 + node), next, node)
            } else {
                match prog.read_u64(head) {
                    Ok(next) => list_for_each_task(prog, l, head, head, next, node),
                    Err(e) => (
                        Vec::new(),
                        Some(Warning::new(
                            "bad_list",
                            format!("thread list at {head}: {e}"),
                            Some(head),
                        )),
                    ),
                }
            }
        }
        // thread_group: the leader's own node is the head.
        Threads::ThreadGroup { node } => {
            let next = le(leader_span, node - l.span.0, 8);
            let head = VirtAddr(leader.task.0 + node);
            list_for_each_task(prog, l, head, head, next, node)
        }
    };
    warnings.extend(warning);
    entries
        .into_iter()
        .filter(|(t, _)| *t != leader.task)
        .collect()
}

fn read_task(
    prog: &Program,
    l: &TaskOffsets,
    addr: VirtAddr,
    warnings: &mut Vec<Warning>,
) -> Option<Task> {
    let (lo, hi) = l.span;
    match prog.read_vec(VirtAddr(addr.0 + lo), (hi - lo) as usize) {
        Ok(b) => Some(parse_task(l, addr, &b)),
        Err(e) => {
            warnings.push(Warning::new(
                "unreadable_task",
                format!("task_struct at {addr}: {e}"),
                Some(addr),
            ));
            None
        }
    }
}

/// `list_for_each_entry` over `task_struct`s, one read per task: each
/// task's span holds the `list_head` the walk follows, so `next` and `prev`
/// come with it. The same checks as [`list_for_each`]. The walk starts
/// after `start` (the head, or an entry already read), whose `next` is
/// `start_next`, and ends back at `head`.
fn list_for_each_task(
    prog: &Program,
    l: &TaskOffsets,
    head: VirtAddr,
    start: VirtAddr,
    start_next: u64,
    member: u64,
) -> (Vec<(VirtAddr, Vec<u8>)>, Option<Warning>) {
    let (lo, hi) = l.span;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let (mut cur, mut next) = (start, start_next);
    loop {
        if next == head.0 {
            return (out, None);
        }
        let task = VirtAddr(next.wrapping_sub(member));
        let span = match prog.read_vec(VirtAddr(task.0.wrapping_add(lo)), (hi - lo) as usize) {
            Ok(span) => span,
            Err(e) => {
                let w = Warning::new(
                    "bad_list",
                    format!("list at {head}: cannot follow {cur}->next to {next:#x}: {e}"),
                    Some(cur),
                );
                return (out, Some(w));
            }
        };
        let prev = le(&span, member + 8 - lo, 8);
        if prev != cur.0 {
            let w = Warning::new(
                "bad_list",
                format!("list at {head}: {cur}->next is {next:#x}, but its prev is {prev:#x}"),
                Some(VirtAddr(next)),
            );
            return (out, Some(w));
        }
        if !seen.insert(next) || out.len() >= LIST_CAP {
            let w = Warning::new(
                "list_cycle",
                format!("list at {head} loops back to {next:#x} without reaching its head"),
                Some(VirtAddr(next)),
            );
            return (out, Some(w));
        }
        let following = le(&span, member - lo, 8);
        out.push((task, span));
        cur = VirtAddr(next);
        next = following;
    }
}

/// A task from its span bytes (`l.span` of the `task_struct` at `addr`).
fn parse_task(l: &TaskOffsets, addr: VirtAddr, b: &[u8]) -> Task {
    let (lo, _) = l.span;
    // Fields outside the span (a names-only walk) read as zero.
    let f = |off: u64, size: u64| off.checked_sub(lo).map_or(0, |at| le(b, at, size));
    let comm_at = (l.comm - lo) as usize;
    let comm_bytes = b.get(comm_at..comm_at + 16).unwrap_or(&[]);
    let comm_len = comm_bytes
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(comm_bytes.len());
    let flags = f(l.flags, 4) as u32;
    let mm = f(l.mm, 8);
    let signal = f(l.signal, 8);
    let cred = f(l.real_cred, 8);
    let (nr_threads, uid, euid) = (None, None, None);
    Task {
        pid: f(l.pid, 4) as i32,
        tgid: f(l.tgid, 4) as i32,
        ppid: 0,
        comm: String::from_utf8_lossy(&comm_bytes[..comm_len]).into_owned(),
        state: task_state_to_char(
            f(l.state.0, l.state.1.min(4)) as u32,
            f(l.exit_state, 4) as u32,
        ),
        kthread: flags & PF_KTHREAD != 0,
        task: addr,
        stack: VirtAddr(f(l.stack, 8)),
        cpu: l.cpu.map(|o| f(o, 4) as u32),
        on_cpu: l.on_cpu.is_some_and(|o| f(o, 4) != 0),
        switches: l.switches.map(|(v, i)| (f(v, 8), f(i, 8))),
        current: false,
        idle: false,
        nr_threads,
        uid,
        euid,
        flags,
        rss_kb: None,
        vsz_kb: None,
        cmdline: None,
        mm,
        signal,
        cred,
        real_parent: f(l.real_parent, 8),
    }
}

#[cfg(test)]
impl Task {
    /// A task with only its address, pid and comm set, for unit tests.
    pub(crate) fn default_for_tests(addr: u64, pid: i32, comm: &str) -> Task {
        parse_task(
            &TaskOffsets {
                tasks: 0,
                pid: 0,
                tgid: 0,
                comm: 0,
                flags: 0,
                state: (0, 4),
                exit_state: 0,
                real_parent: 0,
                stack: 0,
                mm: 0,
                signal: 0,
                real_cred: 0,
                cpu: None,
                on_cpu: None,
                switches: None,
                threads: Threads::ThreadGroup { node: 0 },
                signal_nr_threads: 0,
                cred_uid: 0,
                cred_euid: 0,
                rq_curr: 0,
                rq_idle: 0,
                span: (0, 0),
            },
            VirtAddr(addr),
            &[],
        )
        .with_identity(pid, comm)
    }

    fn with_identity(mut self, pid: i32, comm: &str) -> Task {
        self.pid = pid;
        self.tgid = pid;
        self.comm = comm.to_owned();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_letters_follow_task_state_index() {
        assert_eq!(task_state_to_char(0, 0), 'R');
        assert_eq!(task_state_to_char(1, 0), 'S');
        assert_eq!(task_state_to_char(2, 0), 'D');
        assert_eq!(task_state_to_char(0x100 | 4, 0), 'T'); // TASK_STOPPED = WAKEKILL | __TASK_STOPPED
        assert_eq!(task_state_to_char(8, 0), 't');
        assert_eq!(task_state_to_char(0x80, 0x10), 'X');
        assert_eq!(task_state_to_char(0x80, 0x20), 'Z');
        assert_eq!(task_state_to_char(0x40, 0), 'P');
        assert_eq!(task_state_to_char(0x402, 0), 'I');
        assert_eq!(task_state_to_char(0x102, 0), 'D'); // TASK_KILLABLE
        assert_eq!(task_state_to_char(0x1000, 0), 'D'); // RTLOCK_WAIT
    }
}
