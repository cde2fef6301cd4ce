//! `kpeek hung`: the blocked tasks grouped by identical stack, what each
//! waits on and who holds it, the wait-for graph and its deadlock cycles;
//! and the one-line summary `kpeek info` shows.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Report;
use crate::addr::VirtAddr;
use crate::kernel::hung::{hung, BlockedTask, HungQuery, HungSummary, Owner};
use crate::kernel::info::CpuStates;
use crate::kernel::stack::Unwinder;
use crate::kernel::{Program, TaskList};
use crate::Result;

/// The report of `kpeek hung`.
#[derive(Clone, Debug, Serialize)]
pub struct HungReport {
    /// The counts.
    pub summary: HungSummary,
    /// `hung_task_timeout_secs`, if the kernel has the detector.
    pub timeout_secs: Option<u64>,
    /// `HZ`, from `tick_nsec`.
    pub hz: Option<u64>,
    /// The tasks, grouped by identical `/proc/PID/stack`, largest group first.
    pub groups: Vec<StackGroup>,
    /// Lock owners that are not among the tasks listed (not in D state).
    pub owners: Vec<BlockedTask>,
    /// The wait-for graph: tasks and locks, "waits on" and "owned by".
    pub graph: Graph,
    /// Deadlock cycles.
    pub cycles: Vec<Cycle>,
    /// What could not be used.
    pub notices: Vec<String>,
}

/// Tasks with the same stack.
#[derive(Clone, Debug, Serialize)]
pub struct StackGroup {
    /// How many.
    pub count: usize,
    /// Their pids.
    pub pids: Vec<i32>,
    /// The stack they share, as `/proc/PID/stack` shows it.
    pub stack: Vec<String>,
    /// Each task (its `stack` left empty: it is the group's).
    pub tasks: Vec<BlockedTask>,
}

/// The wait-for graph.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Graph {
    /// Tasks (`task:PID`) and locks (`lock:0xADDR`).
    pub nodes: Vec<Node>,
    /// `waits_on` (task → lock) and `owned_by` (lock → task).
    pub edges: Vec<Edge>,
}

/// A node of the wait-for graph.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    /// A task.
    Task {
        /// `task:PID`.
        id: String,
        /// Its pid.
        pid: i32,
        /// Its comm.
        comm: String,
        /// Its state letter.
        state: char,
    },
    /// A lock.
    Lock {
        /// `lock:0xADDR`.
        id: String,
        /// Its address.
        address: VirtAddr,
        /// Its C type: mutex, rw_semaphore, semaphore, completion.
        #[serde(rename = "type")]
        ty: &'static str,
        /// Its symbol, or the stack it lives on.
        symbol: Option<String>,
        /// The owner word when it is not a task of the task list.
        owner_unknown: Option<String>,
    },
}

/// An edge of the wait-for graph.
#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    /// A node id.
    pub from: String,
    /// A node id.
    pub to: String,
    /// `waits_on` or `owned_by`.
    pub relation: &'static str,
}

/// A deadlock cycle: each task waits on a lock the next one holds, the
/// last on one the first holds.
#[derive(Clone, Debug, Serialize)]
pub struct Cycle {
    /// The tasks, smallest pid first.
    pub pids: Vec<i32>,
    /// Their comms.
    pub comms: Vec<String>,
    /// The lock each waits on, in the same order.
    pub locks: Vec<VirtAddr>,
    /// Those locks' symbols.
    pub symbols: Vec<Option<String>>,
}

/// Analyse the blocked tasks.
pub fn hung_report(prog: &Program, query: HungQuery) -> Result<Report<HungReport>> {
    let list = crate::kernel::task_list_brief(prog)?;
    hung_report_of(prog, list, query)
}

/// [`hung_report`] over a task list already walked.
fn hung_report_of(prog: &Program, list: TaskList, query: HungQuery) -> Result<Report<HungReport>> {
    let states = CpuStates::gather(prog);
    let cpu_regs = states.cpus.iter().map(|c| (c.cpu, c.registers)).collect();
    let unwinder = Unwinder::new(prog, cpu_regs)?;
    let d_state = list
        .tasks
        .iter()
        .filter(|t| t.state == 'D' && t.pid != 0)
        .count();
    let h = hung(prog, &list, &unwinder, query);
    let mut notices = unwinder.notices.clone();
    notices.extend(h.notices.iter().cloned());

    let summary = summarize(d_state, &h);
    let mut groups: BTreeMap<Vec<String>, Vec<BlockedTask>> = BTreeMap::new();
    for t in &h.tasks {
        let mut t = t.clone();
        let stack = std::mem::take(&mut t.stack);
        groups.entry(stack).or_default().push(t);
    }
    let mut groups: Vec<StackGroup> = groups
        .into_iter()
        .map(|(stack, tasks)| StackGroup {
            count: tasks.len(),
            pids: tasks.iter().map(|t| t.pid).collect(),
            stack,
            tasks,
        })
        .collect();
    groups.sort_by_key(|g| (std::cmp::Reverse(g.count), g.pids.first().copied()));

    let everyone: Vec<&BlockedTask> = h.tasks.iter().chain(&h.owners).collect();
    let mut graph = Graph::default();
    let mut locks_seen = std::collections::HashSet::new();
    for t in &everyone {
        graph.nodes.push(Node::Task {
            id: format!("task:{}", t.pid),
            pid: t.pid,
            comm: t.comm.clone(),
            state: t.state,
        });
    }
    for t in &everyone {
        let Some(w) = &t.waits else { continue };
        let lock_id = format!("lock:{}", w.lock);
        graph.edges.push(Edge {
            from: format!("task:{}", t.pid),
            to: lock_id.clone(),
            relation: "waits_on",
        });
        if !locks_seen.insert(w.lock) {
            continue;
        }
        let owner_unknown = match &w.owner {
            Owner::Unknown { raw } => Some(raw.clone()),
            _ => None,
        };
        graph.nodes.push(Node::Lock {
            id: lock_id.clone(),
            address: w.lock,
            ty: w.kind.type_name(),
            symbol: w.symbol.clone(),
            owner_unknown,
        });
        if let Owner::Task { pid, .. } = &w.owner {
            graph.edges.push(Edge {
                from: lock_id,
                to: format!("task:{pid}"),
                relation: "owned_by",
            });
        }
    }
    let cycles = h
        .cycles
        .iter()
        .map(|pids| {
            let of = |pid: &i32| everyone.iter().find(|t| t.pid == *pid);
            Cycle {
                pids: pids.clone(),
                comms: pids
                    .iter()
                    .map(|p| of(p).map_or_else(String::new, |t| t.comm.clone()))
                    .collect(),
                locks: pids
                    .iter()
                    .filter_map(|p| Some(of(p)?.waits.as_ref()?.lock))
                    .collect(),
                symbols: pids
                    .iter()
                    .map(|p| of(p).and_then(|t| t.waits.as_ref()?.symbol.clone()))
                    .collect(),
            }
        })
        .collect();
    let warnings = list.warnings;
    Ok(Report::new(
        HungReport {
            summary,
            timeout_secs: h.timeout_secs,
            hz: h.hz,
            groups,
            owners: h.owners,
            graph,
            cycles,
            notices,
        },
        warnings,
    ))
}

fn summarize(d_state: usize, h: &crate::kernel::hung::Hung) -> HungSummary {
    let hung: Vec<&BlockedTask> = h.tasks.iter().filter(|t| t.blocked.hung).collect();
    HungSummary {
        d_state,
        listed: h.tasks.len(),
        hung: hung.len(),
        longest_secs: h
            .tasks
            .iter()
            .filter(|t| t.state == 'D')
            .filter_map(|t| t.blocked.detector_secs)
            .max(),
        cycles: h.cycles.len(),
        hung_tasks: hung
            .iter()
            .take(16)
            .map(|t| (t.pid, t.comm.clone()))
            .collect(),
    }
}

/// The summary for `kpeek info`: `None` when no task is in D state. The
/// runqueues' `nr_uninterruptible` (summed over the CPUs) says first
/// whether any is, so that a kernel without one costs no task walk.
pub fn hung_summary(prog: &Program) -> Option<HungSummary> {
    let off = prog.debug.member("rq", "nr_uninterruptible").ok()?.offset;
    let mut total: i64 = 0;
    for cpu in prog.cpus().ok()? {
        let rq = prog.per_cpu("runqueues", cpu).ok()?;
        // An unsigned int that one CPU's count can make "negative".
        total += i64::from(prog.read_u32(VirtAddr(rq.0 + off)).ok()? as i32);
    }
    if total <= 0 {
        return None;
    }
    let list = crate::kernel::task_list_brief(prog).ok()?;
    let d: Vec<_> = list
        .tasks
        .iter()
        .filter(|t| t.state == 'D' && t.pid != 0)
        .collect();
    if d.is_empty() {
        return None;
    }
    // Only killable sleepers (TASK_KILLABLE: vfork's parent, most waits
    // of user processes) are never what the detector reports: counted,
    // without unwinding a stack.
    let state = prog
        .debug
        .member("task_struct", "__state")
        .or_else(|_| prog.debug.member("task_struct", "state"))
        .ok()?
        .offset;
    let uninterruptible = d.iter().any(|t| {
        prog.read_u32(VirtAddr(t.task.0 + state))
            .is_ok_and(|st| st & (TASK_WAKEKILL | TASK_NOLOAD) == 0)
    });
    if !uninterruptible {
        return Some(HungSummary {
            d_state: d.len(),
            listed: d.len(),
            ..HungSummary::default()
        });
    }
    let report = hung_report_of(prog, list, HungQuery::default()).ok()?;
    Some(report.body.summary)
}

/// `TASK_WAKEKILL`, `TASK_NOLOAD`.
const TASK_WAKEKILL: u32 = 0x100;
const TASK_NOLOAD: u32 = 0x400;
