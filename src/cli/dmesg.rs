//! `kpeek dmesg`.

use std::io::Write;

use clap::Args;
use kpeek::render;
use kpeek::render::dmesg::DmesgOptions;

use super::output::{emit, styles};
use super::{Style, Target, Via};

/// `kpeek dmesg` options.
#[derive(Args, Debug)]
pub struct DmesgArgs {
    #[command(flatten)]
    target: Target,
    /// `<prio>` before each line (facility * 8 + level), like `dmesg -r`.
    #[arg(short, long)]
    raw: bool,
    /// The caller id after the timestamp (`[  T123]` a task, `[   C1]` a CPU),
    /// as kernels built with CONFIG_PRINTK_CALLER print it.
    #[arg(long)]
    caller: bool,
    /// `kpeek` (like dmesg) or `lx` (exactly the kernel's lx-dmesg).
    #[arg(long, default_value = "kpeek", value_parser = styles(&[Style::Kpeek, Style::Lx]))]
    style: Style,
}

pub fn run(args: DmesgArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let report = kpeek::report::dmesg::dmesg(&prog)?;
    let opts = DmesgOptions {
        raw: args.raw,
        caller: args.caller,
    };
    emit(out, args.target.format, &report, |out, log| {
        match args.style {
            Style::Lx => render::dmesg::lx_dmesg(out, &log.entries),
            _ => render::dmesg::dmesg(out, &log.entries, opts),
        }
    })
}
