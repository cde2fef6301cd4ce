//! Reports: the plain data each command produces, built from the kernel
//! model and shared by the CLI, `kpeek rpc` (the GDB scripts) and
//! `kpeek serve`'s `monitor` commands.
//!
//! Every report is a [`Report`]: one envelope with the [`SCHEMA_VERSION`],
//! the command's own data, and the warnings that made it partial. The JSON
//! of each is documented in `docs/json-schema.md`; `render/` prints the
//! same structs for people.

pub mod bt;
pub mod cpus;
pub mod dmesg;
pub mod hung;
pub mod lsmod;
pub mod pahole;
pub mod ps;
pub mod read;

use serde::Serialize;

use crate::kernel::Warning;

/// The version of every JSON report kpeek prints (`docs/json-schema.md`).
pub const SCHEMA_VERSION: u32 = 1;

/// A command's report: its data between the schema version and the
/// warnings, as `{"schema_version": 1, ..., "warnings": [...]}`.
#[derive(Clone, Debug, Serialize)]
pub struct Report<T> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// What the command found.
    #[serde(flatten)]
    pub body: T,
    /// What went wrong on the way; a report with warnings is partial.
    pub warnings: Vec<Warning>,
}

impl<T> Report<T> {
    /// A report of `body`, partial if there are `warnings`.
    pub fn new(body: T, warnings: Vec<Warning>) -> Report<T> {
        Report {
            schema_version: SCHEMA_VERSION,
            body,
            warnings,
        }
    }

    /// A report that is complete by construction.
    pub fn complete(body: T) -> Report<T> {
        Report::new(body, Vec::new())
    }
}
