//! `kpeek bt`: the stacks of CPUs and tasks, each frame named, with
//! source lines and inlined functions where the vmlinux has them.

use serde::Serialize;

use super::Report;
use crate::addr::VirtAddr;
use crate::kernel::info::{CpuInfo, CpuStates};
use crate::kernel::stack::{FrameView, StackEnd, StackStart, Unwinder};
use crate::kernel::{Program, TaskList};
use crate::{Error, Result};

/// Which stacks to trace, and how much to say of each frame.
#[derive(Clone, Debug, Default)]
pub struct BtQuery {
    /// These thread ids.
    pub pids: Vec<i32>,
    /// Every task.
    pub all: bool,
    /// Every CPU, the panicking one first (also when neither `pids` nor
    /// `all` is given).
    pub cpus: bool,
    /// Also the lines `/proc/PID/stack` shows, for each task.
    pub proc: bool,
    /// Source lines and inlined functions.
    pub lines: bool,
}

/// The traces of a `kpeek bt`.
#[derive(Clone, Debug, Serialize)]
pub struct Backtraces {
    /// The CPUs, the panicking one first.
    pub cpus: Vec<CpuTrace>,
    /// The tasks, in task-list order.
    pub tasks: Vec<TaskTrace>,
    /// With [`BtQuery::proc`]: each task's `/proc/PID/stack` lines, in the
    /// order of `tasks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proc: Vec<Vec<String>>,
    /// What the unwinder could not use (module tables unreadable, no
    /// source lines, ...): the traces are still right where they go.
    pub notices: Vec<String>,
}

/// Trace what `query` asks for.
pub fn bt(prog: &Program, query: &BtQuery) -> Result<Report<Backtraces>> {
    // The CPUs only: bt needs their registers, not the rest of `info`.
    let states = CpuStates::gather(prog);
    let cpu_regs = states.cpus.iter().map(|c| (c.cpu, c.registers)).collect();
    let unwinder = Unwinder::new(prog, cpu_regs)?;
    let mut notices = Vec::new();
    let lines = if query.lines {
        match prog.debug.lines() {
            Ok(l) => Some(l),
            Err(e) => {
                notices.push(format!("no source lines: {e}"));
                None
            }
        }
    } else {
        None
    };
    let want_cpus = query.cpus || (query.pids.is_empty() && !query.all);
    if want_cpus && states.cpus.is_empty() {
        return Err(Error::Usage(
            "this target has no CPU registers: give PIDs or --all".into(),
        ));
    }
    let mut cpus = Vec::new();
    if want_cpus {
        let mut order: Vec<&CpuInfo> = states.cpus.iter().collect();
        order.sort_by_key(|c| (!c.panicked, c.cpu));
        for c in order {
            let stack = unwinder.cpu_stack(c.cpu, &c.registers, None);
            cpus.push(CpuTrace {
                cpu: c.cpu,
                panicked: c.panicked,
                pid: c.current.as_ref().map(|t| t.0),
                comm: c.current.as_ref().map(|t| t.1.clone()),
                frames: unwinder.describe(&stack, lines.as_ref()),
                end: stack.end,
            });
        }
    }
    let list = if query.all || !query.pids.is_empty() {
        crate::kernel::task_list(prog)?
    } else {
        TaskList::default()
    };
    for pid in &query.pids {
        if !list.tasks.iter().any(|t| t.pid == *pid) {
            return Err(Error::Usage(format!("no task with pid {pid}")));
        }
    }
    let mut tasks = Vec::new();
    let mut proc = Vec::new();
    for t in list
        .tasks
        .iter()
        .filter(|t| query.all || query.pids.contains(&t.pid))
    {
        let stack = unwinder.task_stack(t);
        if query.proc {
            proc.push(unwinder.proc_stack(&stack));
        }
        tasks.push(TaskTrace {
            pid: t.pid,
            tgid: t.tgid,
            comm: t.comm.clone(),
            task: t.task,
            state: t.state,
            cpu: t.cpu,
            switches: t.switches,
            start: stack.start,
            frames: unwinder.describe(&stack, lines.as_ref()),
            end: stack.end,
        });
    }
    notices.extend(unwinder.notices.iter().cloned());
    Ok(Report::new(
        Backtraces {
            cpus,
            tasks,
            proc,
            notices,
        },
        list.warnings,
    ))
}

/// A task's stack, ready to show.
#[derive(Clone, Debug, Serialize)]
pub struct TaskTrace {
    /// Thread id.
    pub pid: i32,
    /// Process id.
    pub tgid: i32,
    /// `comm`.
    pub comm: String,
    /// The `task_struct`.
    pub task: VirtAddr,
    /// The state letter.
    pub state: char,
    /// `task_cpu()`.
    pub cpu: Option<u32>,
    /// Context switches `[voluntary, involuntary]`: two traces with the
    /// same counts saw the task asleep at the same place.
    pub switches: Option<(u64, u64)>,
    /// Where the first frame came from.
    pub start: StackStart,
    /// The frames, innermost first.
    pub frames: Vec<FrameView>,
    /// Why the trace ended.
    pub end: StackEnd,
}

/// What a CPU was doing, ready to show.
#[derive(Clone, Debug, Serialize)]
pub struct CpuTrace {
    /// The CPU.
    pub cpu: u32,
    /// It is the CPU that panicked.
    pub panicked: bool,
    /// Its current task (`rq->curr`): pid.
    pub pid: Option<i32>,
    /// Its current task's comm.
    pub comm: Option<String>,
    /// The frames, innermost first.
    pub frames: Vec<FrameView>,
    /// Why the trace ended.
    pub end: StackEnd,
}
