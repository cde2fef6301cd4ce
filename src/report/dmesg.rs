//! `kpeek dmesg`: the kernel log, with its gaps.

use serde::Serialize;

use super::Report;
use crate::kernel::printk::{Entry, Log};
use crate::kernel::{Program, Warning};
use crate::Result;

/// The log as a report.
#[derive(Clone, Debug, Serialize)]
pub struct Entries {
    /// Records and the gaps between them, oldest first.
    pub entries: Vec<Entry>,
}

/// Read the printk ring. Each gap (records lost to damage) is a warning
/// too: a log with gaps is partial.
pub fn dmesg(prog: &Program) -> Result<Report<Entries>> {
    let Log {
        entries,
        mut warnings,
    } = crate::kernel::printk::read_log(prog)?;
    for e in &entries {
        if let Entry::Gap(g) = e {
            warnings.push(Warning {
                code: "printk_gap",
                message: format!("{} printk record(s) lost: {}", g.records, g.reason),
                address: None,
            });
        }
    }
    Ok(Report::new(Entries { entries }, warnings))
}
