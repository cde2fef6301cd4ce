//! `kpeek lsmod`: the loaded modules.

use serde::Serialize;

use super::Report;
use crate::kernel::modules::{for_each_module, Module};
use crate::kernel::Program;
use crate::Result;

/// The modules, newest first (the order of `/proc/modules`).
#[derive(Clone, Debug, Serialize)]
pub struct Modules {
    /// In list order.
    pub modules: Vec<Module>,
}

/// Walk the `modules` list.
pub fn lsmod(prog: &Program) -> Result<Report<Modules>> {
    let list = for_each_module(prog)?;
    Ok(Report::new(
        Modules {
            modules: list.modules,
        },
        list.warnings,
    ))
}
