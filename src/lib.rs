//! kpeek looks inside a Linux kernel, live or dead.
//!
//! It reads a crash dump (ELF vmcore, kdump-compressed, QEMU dumps) or a live
//! QEMU guest together with the kernel's vmlinux, and reports what the kernel
//! was doing: processes and threads, struct layouts, backtraces.
//!
//! The layers, from bytes to a line of output (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//!  vmlinux ──► debuginfo/  types (DWARF or BTF), layouts, symbols, line tables
//!  dump    ──► dump/       ELF vmcore, kdump-compressed, flattened
//!  QEMU    ──► live/       the gdbstub client
//!              memory/     the MemorySource trait; notes: VMCOREINFO, CPU registers
//!              arch/       x86_64 paging, KASLR, ORC, switch frame, registers
//!              kernel/     Program; tasks, lists, CPUs, log, modules, stacks
//!              report/     plain data shared by the CLI, the GDB scripts and `serve`
//!              render/     text; gdbserver/ (`kpeek serve`); rpc/ (kpeek.py)
//! ```
//!
//! Each layer uses only those listed above it (`tests/layers.rs` checks).
//!
//! Library code never prints; it returns data or writes to a writer it is
//! handed.
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod addr;
pub mod arch;
pub mod bytes;
pub mod debuginfo;
pub mod dump;
pub mod error;
pub mod gdbserver;
pub mod kernel;
pub mod live;
pub mod locate;
pub mod memory;
pub mod notes;
pub mod render;
pub mod report;
pub mod rpc;
pub mod text;

pub use error::{Error, Result};

/// The version of kpeek, as `kpeek --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Entry points for the fuzz targets in `fuzz/` (not a stable API): thin
/// wrappers over private parsers, so they stay private.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::live::qemu::fuzzing as qemu;
}
