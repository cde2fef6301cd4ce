//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong while looking inside a kernel.
///
/// Messages are terse and lowercase, and name what broke and where.
/// [`Error::code`] gives a stable identifier for JSON output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file is not what it claims to be, or is damaged.
    #[error("{path}: {what}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Memory that the dump or target does not have.
    #[error("cannot read {len} bytes at {space} address {addr:#x}: {why}")]
    Fault {
        /// The first address that could not be read.
        addr: u64,
        /// How many bytes were asked for.
        len: u64,
        /// "physical", "virtual" or "user virtual".
        space: &'static str,
        /// Why: not in the dump, excluded, not mapped, ...
        why: String,
    },
    /// The kernel could not be located in memory (KASLR, page tables).
    #[error("{0}")]
    Kaslr(String),
    /// The vmlinux is not the kernel that was dumped.
    #[error("{0}")]
    Mismatch(String),
    /// An ELF file has no DWARF debug info (a stripped or compressed kernel).
    #[error("{path}: no DWARF debug info (use the vmlinux from the kernel's debug package, e.g. Debian linux-image-*-dbg or Fedora kernel-debuginfo)")]
    NoDebugInfo {
        /// The file.
        path: PathBuf,
    },
    /// The DWARF debug info is damaged or uses something kpeek cannot read.
    #[error("bad DWARF: {what}")]
    BadDwarf {
        /// What is wrong, and where.
        what: String,
    },
    /// No type of that name is defined in the debug info.
    #[error("type `{name}` not found{}", did_you_mean(suggestions))]
    TypeNotFound {
        /// The name asked for.
        name: String,
        /// Defined names that are close to it, best first.
        suggestions: Vec<String>,
    },
    /// A type has no member of that name.
    #[error("`{ty}` has no member `{member}`")]
    MemberNotFound {
        /// The type searched.
        ty: String,
        /// The member path asked for.
        member: String,
    },
    /// A live target (QEMU's gdbstub, GDB) misbehaved or went away.
    #[error("{0}")]
    Live(String),
    /// The command line does not say enough.
    #[error("{0}")]
    Usage(String),
    /// A report was produced, but parts of it could not be read (see its warnings).
    #[error("{0} warning(s): the report is incomplete")]
    Partial(usize),
    /// A symbol the work needs is not in the symbol table.
    #[error("{table} has no symbol `{name}`")]
    SymbolNotFound {
        /// The symbol.
        name: String,
        /// Which table: "the vmlinux", "kallsyms".
        table: &'static str,
    },
    /// The kernel or the input uses something kpeek does not handle (yet):
    /// the message names it and, where there is one, the way around it.
    #[error("{0}")]
    Unsupported(String),
    /// Kernel data that cannot be right (an implausible size, a table that
    /// contradicts itself): the dump is damaged or the vmlinux is not its.
    #[error("{0}")]
    Corrupt(String),
    /// The output could not be produced (serialising a report).
    #[error("writing the output: {0}")]
    Output(String),
}

impl Error {
    /// A stable, machine-readable name for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::BadFile { .. } => "bad_file",
            Error::Fault { .. } => "fault",
            Error::Kaslr(_) => "kaslr",
            Error::Mismatch(_) => "mismatch",
            Error::NoDebugInfo { .. } => "no_debug_info",
            Error::BadDwarf { .. } => "bad_dwarf",
            Error::TypeNotFound { .. } => "type_not_found",
            Error::MemberNotFound { .. } => "member_not_found",
            Error::Live(_) => "live",
            Error::Usage(_) => "usage",
            Error::Partial(_) => "partial",
            Error::SymbolNotFound { .. } => "symbol_not_found",
            Error::Unsupported(_) => "unsupported",
            Error::Corrupt(_) => "corrupt",
            Error::Output(_) => "output",
        }
    }
}

impl Error {
    /// A fault in the given address space.
    pub fn fault(space: &'static str, addr: u64, len: usize, why: impl Into<String>) -> Error {
        Error::Fault {
            addr,
            len: len as u64,
            space,
            why: why.into(),
        }
    }

    /// A damaged or unexpected input file.
    pub fn bad_file(path: impl Into<PathBuf>, what: impl Into<String>) -> Error {
        Error::BadFile {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// ` (did you mean `a`, `b`?)`, or nothing when there is no suggestion.
fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        return String::new();
    }
    let names: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
    format!(" (did you mean {}?)", names.join(", "))
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
