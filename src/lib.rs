//! kpeek looks inside a Linux kernel, live or dead.
//!
//! It reads a crash dump (ELF vmcore, kdump-compressed, QEMU dumps) or a live
//! QEMU guest together with the kernel's vmlinux, and reports what the kernel
//! was doing: processes and threads, struct layouts, backtraces.
//!
//! The layers, from bytes to a line of output (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//!  vmlinux ──► dwarf/    types, layouts, symbols, line tables
//!  dump    ──► dump/     ELF vmcore, kdump-compressed, flattened
//!              memory/   physical/virtual address spaces, page walk, KASLR
//!              kernel/   tasks, lists, CPUs, stacks
//!              report/   plain data shared by the CLI, the GDB scripts and `serve`
//! ```
//!
//! Library code never prints; it returns data or writes to a writer it is
//! handed.
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod addr;
pub mod debuginfo;
pub mod dump;
pub mod dwarf;
pub mod error;
pub mod gdbserver;
pub mod kernel;
pub mod memory;
pub mod render;
pub mod rpc;

pub use error::{Error, Result};

/// The version of kpeek, as `kpeek --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Entry points for the fuzz targets in `fuzz/` (not a stable API): thin
/// wrappers over private parsers, so they stay private.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::memory::qemu::fuzzing as qemu;
}
