//! `kpeek hung`.

use std::io::Write;

use clap::Args;
use kpeek::kernel::hung::HungQuery;
use kpeek::render;
use kpeek::report::hung::hung_report;

use super::output::emit;
use super::{Target, Via};

/// `kpeek hung` options.
#[derive(Args, Debug)]
pub struct HungArgs {
    #[command(flatten)]
    target: Target,
    /// Every sleeping task (S, D and I), not only those in D state.
    #[arg(long)]
    all_blocked: bool,
}

pub fn run(args: HungArgs, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let prog = args.target.open(via)?;
    let report = hung_report(
        &prog,
        HungQuery {
            all_blocked: args.all_blocked,
        },
    )?;
    for n in &report.body.notices {
        super::output::warn(n);
    }
    emit(out, args.target.format, &report, |out, r| {
        render::hung::hung(out, r)
    })
}
