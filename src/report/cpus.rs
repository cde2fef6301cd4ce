//! `kpeek cpus` and `kpeek info`: the CPUs, and the summary of a kernel.

use super::Report;
use crate::kernel::cpus::Cpus;
use crate::kernel::info::Info;
use crate::kernel::{Program, Warning};
use crate::Result;

/// Each CPU: masks, current task, idle, runqueue length. A possible CPU
/// whose per-CPU area cannot be read (a damaged `__per_cpu_offset`), or an
/// online one whose current task cannot, is a warning: its row would
/// otherwise be missing or all `?`.
pub fn cpus(prog: &Program) -> Result<Report<Cpus>> {
    let cpus = crate::kernel::cpus::cpus(prog)?;
    let mut warnings = Vec::new();
    for &cpu in &cpus.possible {
        let row = cpus.cpus.iter().find(|c| c.cpu == cpu);
        let what = match row {
            None => "its per-CPU area (its runqueue) cannot be read",
            Some(c) if c.online && c.pid.is_none() => "its current task cannot be read",
            Some(_) => continue,
        };
        let address = prog.per_cpu("runqueues", cpu).ok();
        warnings.push(Warning {
            code: "unreadable_cpu",
            message: format!("CPU {cpu}: {what} (__per_cpu_offset[{cpu}] may be damaged)"),
            address,
        });
    }
    Ok(Report::new(cpus, warnings))
}

/// What `kpeek info` shows: the dump, the kernel, the crash, the CPUs.
pub fn info(prog: &Program) -> Report<Info> {
    let mut info = Info::gather(prog);
    info.hung = super::hung::hung_summary(prog);
    Report::complete(info)
}
