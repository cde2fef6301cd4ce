//! `kpeek ps` and `kpeek threads`.

use std::io::Write;

use clap::Args;
use kpeek::render;
use kpeek::report::ps::{all_tasks, ps, PsQuery};

use super::output::{emit, styles};
use super::{Format, Style, Target, Via};

/// `kpeek ps` options.
#[derive(Args, Debug)]
pub struct PsArgs {
    #[command(flatten)]
    target: Target,
    /// Every thread, not only processes.
    #[arg(short = 'T', long)]
    threads: bool,
    /// `kpeek` (the default table) or `lx` (exactly the kernel's lx-ps).
    #[arg(long, default_value = "kpeek", value_parser = styles(&[Style::Kpeek, Style::Lx]))]
    style: Style,
    /// Only these pids (thread or process ids).
    #[arg(short, long, value_name = "PID", value_delimiter = ',')]
    pid: Vec<i32>,
    /// Only tasks whose comm contains NAME.
    #[arg(short = 'n', long, value_name = "NAME")]
    name: Option<String>,
    /// Only tasks in these states (letters, e.g. DZ).
    #[arg(long, value_name = "LETTERS")]
    state: Option<String>,
    /// Only user tasks.
    #[arg(long, conflicts_with = "kernel")]
    user: bool,
    /// The process tree (parents and children), like pstree.
    #[arg(long, conflicts_with_all = ["threads", "style"])]
    tree: bool,
    /// Only kernel threads.
    #[arg(long)]
    kernel: bool,
}

pub fn run(args: PsArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let format = args.target.format;
    let lx = args.style == Style::Lx;
    if args.tree && format == Format::Human {
        let report = all_tasks(&prog)?;
        return emit(out, format, &report, |out, t| {
            render::ps::tree(out, &t.tasks)
        });
    }
    let query = PsQuery {
        threads: args.threads || lx,
        pids: args.pid,
        name: args.name,
        states: args.state,
        user: args.user,
        kernel: args.kernel,
        lx: lx && format == Format::Human,
    };
    let report = ps(&prog, &query)?;
    emit(out, format, &report, |out, t| match args.style {
        Style::Lx => render::ps::lx_ps(out, &t.tasks),
        _ => render::ps::table(out, &t.tasks, args.threads),
    })
}

/// `kpeek threads`: every thread, like the kernel books' `thrd_showall`.
pub fn threads(target: Target, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = target.open(via)?;
    let report = all_tasks(&prog)?;
    emit(out, target.format, &report, |out, t| {
        render::ps::thrd_showall(out, &t.tasks)
    })
}
