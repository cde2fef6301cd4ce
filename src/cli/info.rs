//! `kpeek info`.

use std::io::Write;

use super::output::emit;
use super::{Target, Via};

pub fn run(target: Target, out: &mut dyn Write, via: Via<'_>) -> kpeek::Result<()> {
    let (prog, origin) = target.open_with_origin(via)?;
    let mut report = kpeek::report::cpus::info(&prog);
    report.body.vmlinux_origin = origin;
    emit(out, target.format, &report, |out, info| {
        kpeek::render::info::info(out, info)
    })
}
