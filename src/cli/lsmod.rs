//! `kpeek lsmod`.

use std::io::Write;

use clap::Args;
use kpeek::render;

use super::output::{emit, styles};
use super::{Style, Target, Via};

/// `kpeek lsmod` options.
#[derive(Args, Debug)]
pub struct LsmodArgs {
    #[command(flatten)]
    target: Target,
    /// `kpeek` (like lsmod), `proc` (exactly /proc/modules) or `lx` (the kernel's lx-lsmod).
    #[arg(long, default_value = "kpeek", value_parser = styles(&[Style::Kpeek, Style::Proc, Style::Lx]))]
    style: Style,
}

pub fn run(args: LsmodArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let report = kpeek::report::lsmod::lsmod(&prog)?;
    emit(out, args.target.format, &report, |out, mods| {
        match args.style {
            Style::Proc => render::lsmod::proc_modules(out, &mods.modules),
            Style::Lx => render::lsmod::lx_lsmod(out, &mods.modules),
            Style::Kpeek => render::lsmod::lsmod(out, &mods.modules),
        }
    })
}
