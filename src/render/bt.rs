//! Backtraces: kpeek's detailed view, and `/proc/PID/stack` lines.

use std::io::{self, Write};

use super::escape;
use crate::kernel::stack::{FrameKind, FrameView, StackEnd};
use crate::report::bt::{CpuTrace, TaskTrace};

/// kpeek's view of one task's stack.
pub fn task(out: &mut (impl Write + ?Sized), t: &TaskTrace) -> io::Result<()> {
    let cpu = t.cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
    writeln!(
        out,
        "PID: {}  TGID: {}  COMM: \"{}\"  TASK: {:016x}  STATE: {}  CPU: {}{}",
        t.pid,
        t.tgid,
        escape(&t.comm),
        t.task.0,
        t.state,
        cpu,
        match t.start {
            crate::kernel::stack::StackStart::Cpu { cpu } => format!("  (running on CPU {cpu})"),
            crate::kernel::stack::StackStart::Switched => String::new(),
        }
    )?;
    frames(out, &t.frames, &t.end)
}

/// kpeek's view of what one CPU was doing.
pub fn cpu(out: &mut (impl Write + ?Sized), c: &CpuTrace) -> io::Result<()> {
    let who = match (&c.pid, &c.comm) {
        (Some(pid), Some(comm)) => format!("  PID: {pid}  COMM: \"{}\"", escape(comm)),
        _ => String::new(),
    };
    let panic = if c.panicked { "  (panic)" } else { "" };
    writeln!(out, "CPU {}{who}{panic}", c.cpu)?;
    frames(out, &c.frames, &c.end)
}

fn frames(out: &mut (impl Write + ?Sized), frames: &[FrameView], end: &StackEnd) -> io::Result<()> {
    let mut n = 0usize;
    for f in frames {
        if !f.inlined {
            if let (FrameKind::Regs | FrameKind::Iret, Some(regs)) = (f.kind, f.regs) {
                let what = if f.kind == FrameKind::Regs {
                    "pt_regs"
                } else {
                    "IRET frame of pt_regs"
                };
                writeln!(
                    out,
                    "    -- interrupt, exception or system call: {what} at {:016x} --",
                    regs.0
                )?;
            }
        }
        let name = match (&f.function, f.offset, f.size) {
            (Some(func), Some(off), Some(size)) => format!("{}+{off:#x}/{size:#x}", escape(func)),
            (Some(func), _, _) => escape(func).into_owned(),
            _ => "?".to_owned(),
        };
        let module = f
            .module
            .as_ref()
            .map_or_else(String::new, |m| format!(" [{}]", escape(m)));
        let place = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!("  {file}:{line}"),
            (Some(file), None) => format!("  {file}"),
            _ => String::new(),
        };
        let guess = if f.kind == FrameKind::Guess {
            "  (frame-pointer guess)"
        } else {
            ""
        };
        if f.inlined {
            writeln!(out, "     {:>20}  (inlined) {name}{place}", "")?;
        } else {
            writeln!(
                out,
                " #{n:<3} {:016x}  {name}{module}{place}{guess}",
                f.pc.0
            )?;
            n += 1;
        }
    }
    match end {
        StackEnd::Bottom => {}
        StackEnd::User { pc, sp } => writeln!(
            out,
            "    -- user space: pc {:016x}, sp {:016x} --",
            pc.0, sp.0
        )?,
        StackEnd::Error { what } => writeln!(out, "    -- stopped: {} --", escape(what))?,
        StackEnd::Unreadable { addr } => {
            writeln!(out, "    -- stopped: {:016x} is not in the dump --", addr.0)?
        }
        StackEnd::TooDeep => writeln!(out, "    -- stopped after {} frames --", frames.len())?,
        StackEnd::NoStack { what } => writeln!(out, "    -- no kernel stack: {} --", escape(what))?,
    }
    writeln!(out)
}

/// `/proc/PID/stack` lines for one task; with `header`, a `==> PID (comm) <==`
/// line first, for listings of several tasks.
pub fn proc_lines(
    out: &mut (impl Write + ?Sized),
    t: &TaskTrace,
    lines: &[String],
    header: bool,
) -> io::Result<()> {
    if header {
        writeln!(out, "==> {} ({}) <==", t.pid, escape(&t.comm))?;
    }
    for l in lines {
        writeln!(out, "{}", escape(l))?;
    }
    if header {
        writeln!(out)?;
    }
    Ok(())
}
