//! Task listings: kpeek's own `ps` table, the kernel's `lx-ps`, and the
//! kernel books' `thrd_showall`.

use std::io::{self, Write};

use super::escape;
use crate::kernel::Task;

/// `comm`, or `[comm]` for a kernel thread.
fn name(t: &Task) -> String {
    if t.kthread {
        format!("[{}]", escape(&t.comm))
    } else {
        escape(&t.comm).into_owned()
    }
}

/// init_task (swapper/0) and every task on the task lists: what
/// `do_each_thread` and `lx-ps` see. The other CPUs' idle tasks are only in
/// the runqueues.
fn swapper0_and_threads(tasks: &[Task]) -> impl Iterator<Item = &Task> {
    tasks
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || !t.idle)
        .map(|(_, t)| t)
}

/// kpeek's table: one row per process (or per thread with `threads`),
/// `>` marking the tasks that were running on a CPU; RSS in KiB.
pub fn table<'t>(
    out: &mut (impl Write + ?Sized),
    tasks: impl IntoIterator<Item = &'t Task>,
    threads: bool,
) -> io::Result<()> {
    if threads {
        writeln!(
            out,
            "     PID      TID     PPID CPU  TASK                ST  NTHR   UID      RSS  COMM"
        )?;
    } else {
        writeln!(
            out,
            "     PID     PPID CPU  TASK                ST  NTHR   UID      RSS  COMM"
        )?;
    }
    for t in tasks {
        let mark = if t.current { '>' } else { ' ' };
        let cpu = t.cpu.map_or("-".to_owned(), |c| c.to_string());
        let nthr = t.nr_threads.map_or("-".to_owned(), |n| n.to_string());
        let uid = t.uid.map_or("-".to_owned(), |u| u.to_string());
        let rss = t.rss_kb.map_or("-".to_owned(), |r| r.to_string());
        if threads {
            write!(out, "{mark}{:>7} {:>8} {:>8}", t.tgid, t.pid, t.ppid)?;
        } else {
            write!(out, "{mark}{:>7} {:>8}", t.tgid, t.ppid)?;
        }
        writeln!(
            out,
            " {cpu:>3}  {:#018x}  {}  {nthr:>4} {uid:>5} {rss:>8}  {}",
            t.task.0,
            t.state,
            name(t)
        )?;
    }
    Ok(())
}

/// One row of `lx-ps`: `"{} {:^5} {}".format(task, pid, comm)` in Python.
pub fn lx_ps_row(task: u64, pid: i32, comm: &str) -> String {
    format!("{task:#x} {:^5} {}", pid.to_string(), escape(comm))
}

/// Exactly what the kernel's own `lx-ps` (scripts/gdb/linux/tasks.py)
/// prints: every thread of `task_lists()`, swapper/0 the only idle task.
pub fn lx_ps(out: &mut (impl Write + ?Sized), tasks: &[Task]) -> io::Result<()> {
    writeln!(out, "{:>10} {:>12} {:>7}", "TASK", "PID", "COMM")?;
    for t in swapper0_and_threads(tasks) {
        writeln!(out, "{}", lx_ps_row(t.task.0, t.pid, &t.comm))?;
    }
    Ok(())
}

/// The kernel books' `thrd_showall` listing (`do_each_thread`): TGID, PID,
/// task_struct and kernel-stack addresses, the name (kernel threads in
/// brackets), the thread count on the main thread of a multi-threaded
/// process, and the total.
pub fn thrd_showall(out: &mut (impl Write + ?Sized), tasks: &[Task]) -> io::Result<()> {
    let rule = "-".repeat(90);
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "    TGID      PID         current        stack-start         Thread Name      MT? # thrds"
    )?;
    writeln!(out, "{rule}")?;
    let mut total = 0;
    for t in swapper0_and_threads(tasks) {
        write!(
            out,
            "{:>8} {:>8}  {:#018x} {:#018x}",
            t.tgid, t.pid, t.task.0, t.stack.0
        )?;
        if t.kthread {
            write!(out, " [{:>16}]", escape(&t.comm))?;
        } else {
            write!(out, "  {:>16} ", escape(&t.comm))?;
        }
        match t.nr_threads {
            Some(n) if !t.kthread && t.pid == t.tgid && n > 1 => writeln!(out, " {n:>3}")?,
            _ => writeln!(out)?,
        }
        total += 1;
    }
    writeln!(out, "total # of threads on the system: {total}")
}

/// The process tree (`ps --tree`): every process under its parent
/// (`real_parent`), children by pid, kernel threads in brackets, thread
/// counts in braces:
///
/// ```text
/// 0 [swapper/0]
/// ├─1 init
/// │ ├─39 kpw-mt {301}
/// ```
pub fn tree(out: &mut (impl Write + ?Sized), tasks: &[Task]) -> io::Result<()> {
    use std::collections::BTreeMap;
    // Processes only; swapper/0 (pid 0) is the root.
    let procs: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.pid == t.tgid && !(t.idle && t.comm != "swapper/0"))
        .collect();
    let mut children: BTreeMap<i32, Vec<&Task>> = BTreeMap::new();
    for t in procs.iter().filter(|t| t.pid != 0) {
        children.entry(t.ppid).or_default().push(t);
    }
    for list in children.values_mut() {
        list.sort_by_key(|t| t.pid);
    }
    fn label(t: &Task) -> String {
        let threads = t
            .nr_threads
            .filter(|&n| n > 1)
            .map_or(String::new(), |n| format!(" {{{n}}}"));
        format!("{} {}{threads}", t.pid, name(t))
    }
    fn walk(
        out: &mut (impl Write + ?Sized),
        children: &BTreeMap<i32, Vec<&Task>>,
        pid: i32,
        prefix: &str,
        depth: usize,
        shown: &mut std::collections::HashSet<u64>,
    ) -> io::Result<()> {
        let Some(kids) = children.get(&pid) else {
            return Ok(());
        };
        if depth > 4096 {
            return Ok(()); // a parent loop in a corrupt dump
        }
        for (i, t) in kids.iter().enumerate() {
            shown.insert(t.task.0);
            let last = i + 1 == kids.len();
            writeln!(
                out,
                "{prefix}{}{}",
                if last { "└─" } else { "├─" },
                label(t)
            )?;
            let deeper = format!("{prefix}{}", if last { "  " } else { "│ " });
            if t.pid != pid {
                walk(out, children, t.pid, &deeper, depth + 1, shown)?;
            }
        }
        Ok(())
    }
    if let Some(root) = procs.iter().find(|t| t.pid == 0) {
        writeln!(out, "{}", label(root))?;
    }
    let mut shown = std::collections::HashSet::new();
    walk(out, &children, 0, "", 0, &mut shown)?;
    // Processes whose parent is not in the list (a broken walk) still show.
    let known: std::collections::HashSet<i32> = procs.iter().map(|t| t.pid).collect();
    for (ppid, kids) in &children {
        if *ppid != 0 && !known.contains(ppid) {
            for t in kids {
                shown.insert(t.task.0);
                writeln!(out, "? (parent {ppid} not found) ─{}", label(t))?;
            }
        }
    }
    // And so do those whose parent links loop and never reach pid 0 (the
    // walk warns about the loop).
    for t in procs.iter().filter(|t| t.pid != 0) {
        if !shown.contains(&t.task.0) {
            writeln!(out, "? (in a parent loop, parent {}) ─{}", t.ppid, label(t))?;
        }
    }
    Ok(())
}
