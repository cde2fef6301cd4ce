//! `kpeek cpus` and `kpeek info`: the CPUs, and the summary of a kernel.

use super::Report;
use crate::kernel::cpus::Cpus;
use crate::kernel::info::Info;
use crate::kernel::Program;
use crate::Result;

/// Each CPU: masks, current task, idle, runqueue length.
pub fn cpus(prog: &Program) -> Result<Report<Cpus>> {
    Ok(Report::complete(crate::kernel::cpus::cpus(prog)?))
}

/// What `kpeek info` shows: the dump, the kernel, the crash, the CPUs.
pub fn info(prog: &Program) -> Report<Info> {
    Report::complete(Info::gather(prog))
}
