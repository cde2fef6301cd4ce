//! `kpeek bt`.

use std::io::Write;

use clap::Args;
use kpeek::render;
use kpeek::report::bt::{bt, BtQuery};

use super::output::{emit, styles};
use super::{Style, Target, Via};

/// `kpeek bt` options.
#[derive(Args, Debug)]
pub struct BtArgs {
    #[command(flatten)]
    target: Target,
    /// Thread ids to trace.
    #[arg(value_name = "PID")]
    pids: Vec<i32>,
    /// Every task.
    #[arg(short, long, conflicts_with = "pids")]
    all: bool,
    /// What each CPU was doing, the panicking CPU first (the default when
    /// no PID is given).
    #[arg(long)]
    cpus: bool,
    /// `kpeek` (every frame, pt_regs crossings, source lines and inlined
    /// functions) or `proc` (exactly what /proc/PID/stack shows).
    #[arg(long, default_value = "kpeek", value_parser = styles(&[Style::Kpeek, Style::Proc]))]
    style: Style,
    /// Leave out source lines and inlined functions.
    #[arg(long)]
    no_lines: bool,
}

pub fn run(args: BtArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let proc = args.style == Style::Proc;
    let query = BtQuery {
        pids: args.pids,
        all: args.all,
        cpus: args.cpus,
        proc,
        lines: !args.no_lines && !proc,
    };
    let report = bt(&prog, &query)?;
    for n in &report.body.notices {
        super::output::warn(n);
    }
    emit(out, args.target.format, &report, |out, b| {
        for c in &b.cpus {
            render::bt::cpu(out, c)?;
        }
        let header = b.tasks.len() > 1 || !b.cpus.is_empty();
        for (i, t) in b.tasks.iter().enumerate() {
            match b.proc.get(i) {
                Some(lines) => render::bt::proc_lines(out, t, lines, header)?,
                None => render::bt::task(out, t)?,
            }
        }
        Ok(())
    })
}
