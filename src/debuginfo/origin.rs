//! Where the debug info in use came from, as `kpeek info` says it.

use std::fmt;

use serde::Serialize;

/// Where the vmlinux in use came from (`kpeek info` shows it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Named on the command line (`--vmlinux`).
    Given {
        /// The file.
        path: String,
    },
    /// Found where a distribution installs it.
    Found {
        /// The file.
        path: String,
    },
    /// From a debuginfod server (now in the cache).
    Debuginfod {
        /// The URL it was downloaded from.
        url: String,
        /// The cached file.
        path: String,
    },
    /// From the debuginfod cache (downloaded before, by kpeek, GDB, drgn...).
    DebuginfodCache {
        /// The cached file.
        path: String,
    },
    /// No vmlinux: the kernel's own kallsyms and BTF.
    None,
}

impl Origin {
    /// The vmlinux file, if there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Origin::Given { path }
            | Origin::Found { path }
            | Origin::Debuginfod { path, .. }
            | Origin::DebuginfodCache { path } => Some(path),
            Origin::None => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Given { path } => write!(f, "given: {path}"),
            Origin::Found { path } => write!(f, "found at {path}"),
            Origin::Debuginfod { url, path } => write!(f, "debuginfod: {url} (cached at {path})"),
            Origin::DebuginfodCache { path } => write!(f, "debuginfod cache: {path}"),
            Origin::None => f.write_str("none: BTF + kallsyms"),
        }
    }
}
