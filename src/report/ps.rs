//! `kpeek ps` and `kpeek threads`: the task list, filtered.

use serde::Serialize;

use super::Report;
use crate::kernel::{Program, Task, TaskList};
use crate::Result;

/// Which tasks to list, and how much of each to read.
#[derive(Clone, Debug, Default)]
pub struct PsQuery {
    /// Every thread, not only thread-group leaders.
    pub threads: bool,
    /// Only these pids (a thread id or a process id).
    pub pids: Vec<i32>,
    /// Only tasks whose comm contains this.
    pub name: Option<String>,
    /// Only tasks in these states (letters).
    pub states: Option<String>,
    /// Only user tasks.
    pub user: bool,
    /// Only kernel threads.
    pub kernel: bool,
    /// The listing is the kernel's `lx-ps`: every task walked, pid and
    /// comm only, so read no more than that needs (the filters choose how
    /// much to read, not what is listed).
    pub lx: bool,
}

/// The tasks a listing shows.
#[derive(Clone, Debug, Serialize)]
pub struct Tasks {
    /// In task-list order.
    pub tasks: Vec<Task>,
}

/// Walk the tasks and keep those `query` selects; the `lx` listing keeps
/// every task it walked, in the kernel's own order.
pub fn ps(prog: &Program, query: &PsQuery) -> Result<Report<Tasks>> {
    // lx-ps shows pid and comm only: read nothing else, unless a filter
    // asks about the state or the kind of task.
    let list = if query.lx && query.states.is_none() && !query.user && !query.kernel {
        crate::kernel::task_list_names(prog)?
    } else if query.lx {
        crate::kernel::task_list_brief(prog)?
    } else {
        crate::kernel::task_list(prog)?
    };
    let TaskList { tasks, warnings } = list;
    if query.lx {
        return Ok(Report::new(Tasks { tasks }, warnings));
    }
    let want_state = query.states.as_deref().unwrap_or("");
    let tasks = tasks
        .into_iter()
        .filter(|t| query.threads || t.pid == t.tgid || !query.pids.is_empty())
        .filter(|t| {
            query.pids.is_empty() || query.pids.contains(&t.pid) || query.pids.contains(&t.tgid)
        })
        .filter(|t| query.name.as_deref().is_none_or(|n| t.comm.contains(n)))
        .filter(|t| want_state.is_empty() || want_state.contains(t.state))
        .filter(|t| {
            if t.kthread {
                !query.user
            } else {
                !query.kernel
            }
        })
        .collect();
    Ok(Report::new(Tasks { tasks }, warnings))
}

/// Every task, threads included: `kpeek threads`, `ps --tree`.
pub fn all_tasks(prog: &Program) -> Result<Report<Tasks>> {
    let TaskList { tasks, warnings } = crate::kernel::task_list(prog)?;
    Ok(Report::new(Tasks { tasks }, warnings))
}
