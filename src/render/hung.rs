//! `kpeek hung` as text: the deadlock cycles, then each group of tasks
//! with the same stack, what they wait on and who holds it.

use std::io::{self, Write};

use super::escape;
use crate::kernel::hung::{BlockedTask, HungSummary, Owner, Wait};
use crate::report::hung::HungReport;

/// `kpeek info`'s line: "8 tasks in D state, 8 hung (longest 17 s); 1 deadlock cycle".
pub fn summary_line(h: &HungSummary) -> String {
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut s = format!("{} in D state", plural(h.d_state, "task", "tasks"));
    if h.hung > 0 {
        s.push_str(&format!(", {} over the hung-task timeout", h.hung));
        if let Some(l) = h.longest_secs {
            s.push_str(&format!(" (longest {l} s)"));
        }
        let names: Vec<String> = h
            .hung_tasks
            .iter()
            .map(|(pid, comm)| format!("{}:{pid}", escape(comm)))
            .collect();
        s.push_str(&format!(": {}", names.join(" ")));
        if h.hung > h.hung_tasks.len() {
            s.push_str(" ...");
        }
    }
    if h.cycles > 0 {
        s.push_str(&format!(
            "; {}",
            plural(h.cycles, "deadlock cycle", "deadlock cycles")
        ));
    }
    s
}

fn owner(o: &Owner) -> String {
    match o {
        Owner::Task {
            pid, comm, state, ..
        } => format!("owned by pid {pid} {} ({state})", escape(comm)),
        Owner::Readers { raw } => format!("held by readers (owner word {raw})"),
        Owner::Unknown { raw } => format!("owner unknown ({raw})"),
        Owner::None => "no owner".to_owned(),
        Owner::NotTracked => String::new(),
    }
}

fn wait(w: &Wait) -> String {
    let (sym, on_stack) = match w.symbol.as_deref() {
        Some(s) if s.starts_with("stack of ") => (String::new(), format!(" (on the {s})")),
        Some(s) => (format!(" {}", escape(s)), String::new()),
        None => (String::new(), String::new()),
    };
    let own = owner(&w.owner);
    let own = if own.is_empty() {
        own
    } else {
        format!(", {own}")
    };
    format!("{}{sym} at {}{on_stack}{own}", w.kind.describe(), w.lock)
}

fn blocked(t: &BlockedTask) -> String {
    let mut parts = Vec::new();
    if let Some(s) = t.blocked.detector_secs {
        parts.push(format!("blocked {s} s (hung-task detector)"));
    }
    if let Some(ns) = t.blocked.since_last_ran_ns {
        parts.push(format!(
            "last ran {}.{:03} s ago",
            ns / 1_000_000_000,
            ns % 1_000_000_000 / 1_000_000
        ));
    }
    if t.blocked.hung {
        parts.push("HUNG".to_owned());
    }
    parts.join(", ")
}

/// Tasks of a group shown one per line; JSON has them all.
const GROUP_LINES: usize = 8;

/// The whole report.
pub fn hung(out: &mut (impl Write + ?Sized), r: &HungReport) -> io::Result<()> {
    let s = &r.summary;
    let timeout = r.timeout_secs.map_or_else(
        || " (no hung-task detector: times from the scheduler clock)".to_owned(),
        |t| format!(" (hung_task_timeout_secs {t})"),
    );
    writeln!(out, "{}{timeout}", summary_line(s))?;
    for c in &r.cycles {
        writeln!(out)?;
        writeln!(out, "DEADLOCK: a cycle of {} tasks", c.pids.len())?;
        for (i, pid) in c.pids.iter().enumerate() {
            let next = (i + 1) % c.pids.len();
            let sym = c
                .symbols
                .get(i)
                .cloned()
                .flatten()
                .map_or_else(String::new, |s| format!(" {}", escape(&s)));
            let lock = c
                .locks
                .get(i)
                .map_or_else(|| "?".to_owned(), |l| l.to_string());
            writeln!(
                out,
                "  pid {pid} {} waits on{sym} at {lock}, held by pid {} {}",
                escape(c.comms.get(i).map_or("", String::as_str)),
                c.pids[next],
                escape(c.comms.get(next).map_or("", String::as_str)),
            )?;
        }
    }
    for g in &r.groups {
        writeln!(out)?;
        let comms: Vec<String> = {
            let mut c: Vec<String> = Vec::new();
            for t in &g.tasks {
                let name = escape(&t.comm).into_owned();
                if !c.contains(&name) {
                    c.push(name);
                }
            }
            if c.len() > 4 {
                let more = c.len() - 3;
                c.truncate(3);
                c.push(format!("{more} other names"));
            }
            c
        };
        let pids: Vec<String> = g.pids.iter().map(i32::to_string).collect();
        writeln!(
            out,
            "{} {} ({}): pid {}",
            g.count,
            if g.count == 1 { "task" } else { "tasks" },
            comms.join(", "),
            pids.join(" ")
        )?;
        for t in g.tasks.iter().take(GROUP_LINES) {
            let what = match (&t.waits, &t.wchan) {
                (Some(w), _) => format!("waits on {}", wait(w)),
                (None, Some(f)) => format!("sleeps in {}", escape(f)),
                (None, None) => "sleeps".to_owned(),
            };
            let b = blocked(t);
            let b = if b.is_empty() { b } else { format!("; {b}") };
            writeln!(
                out,
                "  pid {} {} {}: {what}{b}",
                t.pid,
                t.state,
                escape(&t.comm)
            )?;
        }
        if g.tasks.len() > GROUP_LINES {
            writeln!(out, "  ... and {} more", g.tasks.len() - GROUP_LINES)?;
        }
        for line in &g.stack {
            writeln!(out, "    {}", escape(line))?;
        }
    }
    if !r.owners.is_empty() {
        writeln!(out)?;
        writeln!(out, "Lock owners not in D state:")?;
        for t in &r.owners {
            let what = match (&t.waits, &t.wchan) {
                (Some(w), _) => format!("waits on {}", wait(w)),
                (None, Some(f)) => format!("in {}", escape(f)),
                (None, None) => String::new(),
            };
            writeln!(
                out,
                "  pid {} {} {}: {what}",
                t.pid,
                t.state,
                escape(&t.comm)
            )?;
            for line in &t.stack {
                writeln!(out, "    {}", escape(line))?;
            }
        }
    }
    Ok(())
}
