//! What every command shares on the way out: the output format, the
//! style names, JSON, and warnings with the exit status they make.

use std::io::Write;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::ValueEnum;
use kpeek::report::Report;
use kpeek::Error;
use serde::Serialize;

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Human,
    /// The stable JSON contract (docs/json-schema.md).
    Json,
}

/// `--style` of the commands whose text can be kpeek's own or exactly
/// what another tool prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// kpeek's own text.
    Kpeek,
    /// Exactly what the kernel's GDB command of the same name prints
    /// (`lx-ps`, `lx-dmesg`, `lx-lsmod`, `lx-cpus`).
    Lx,
    /// Exactly what the kernel's `/proc` file prints (`/proc/modules`,
    /// `/proc/PID/stack`).
    Proc,
}

/// Print `report` as JSON, or with `human` for people; then its warnings,
/// which make the result partial.
pub fn emit<T: Serialize>(
    out: &mut dyn Write,
    format: Format,
    report: &Report<T>,
    human: impl FnOnce(&mut dyn Write, &T) -> std::io::Result<()>,
) -> kpeek::Result<()> {
    match format {
        Format::Json => write_json(out, report)?,
        Format::Human => human(out, &report.body).map_err(stdout_error)?,
    }
    finish(&report.warnings)
}

/// `kpeek: warning: ...` on stderr, with whatever came from the dump in
/// it escaped (render::escape).
pub fn warn(message: &str) {
    eprintln!("kpeek: warning: {}", kpeek::render::escape(message));
}

/// Print a listing's warnings; a partial listing exits with status 2.
pub fn finish(warnings: &[kpeek::kernel::Warning]) -> kpeek::Result<()> {
    for w in warnings {
        warn(&w.message);
    }
    if warnings.is_empty() {
        Ok(())
    } else {
        Err(Error::Partial(warnings.len()))
    }
}

/// Pretty JSON and a newline.
pub fn write_json(out: &mut dyn Write, value: &impl Serialize) -> kpeek::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| match e.io_error_kind() {
        Some(kind) => stdout_error(kind.into()),
        None => Error::Output(e.to_string()),
    })?;
    writeln!(out).map_err(stdout_error)
}

/// A failed write to stdout.
pub fn stdout_error(e: std::io::Error) -> Error {
    Error::Io {
        path: "<stdout>".into(),
        source: e,
    }
}

/// `--style` for a command that has only some of the styles: clap lists
/// and checks just those.
pub fn styles(allowed: &'static [Style]) -> impl TypedValueParser<Value = Style> {
    PossibleValuesParser::new(allowed.iter().filter_map(|s| s.to_possible_value())).map(|name| {
        // Only the allowed names get here.
        Style::from_str(&name, false).unwrap_or(Style::Kpeek)
    })
}
