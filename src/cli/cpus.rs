//! `kpeek cpus`.

use std::io::Write;

use clap::Args;
use kpeek::render;

use super::output::{emit, styles};
use super::{Style, Target, Via};

/// `kpeek cpus` options.
#[derive(Args, Debug)]
pub struct CpusArgs {
    #[command(flatten)]
    target: Target,
    /// `kpeek` (a row per CPU) or `lx` (exactly the kernel's lx-cpus: the CPU masks).
    #[arg(long, default_value = "kpeek", value_parser = styles(&[Style::Kpeek, Style::Lx]))]
    style: Style,
}

pub fn run(args: CpusArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let report = kpeek::report::cpus::cpus(&prog)?;
    emit(out, args.target.format, &report, |out, cpus| {
        match args.style {
            Style::Lx => render::cpus::lx_cpus(out, cpus),
            _ => render::cpus::table(out, cpus),
        }
    })
}
