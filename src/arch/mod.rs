//! What differs between CPU architectures: register sets, the kernel's
//! address space and page tables, finding KASLR, the ORC unwind tables and
//! the frame a task is switched out with.
//!
//! The seam: the layers above name only `crate::arch::...` items, never
//! `arch::x86_64`. x86_64 is the one architecture today; another (arm64:
//! `arch/aarch64/`, file for file beside `arch/x86_64/`) provides the same
//! items, chosen here from the dump's machine type once there are two.
//!
//! Within an architecture, `regs.rs` is data at the bottom (the notes of a
//! dump are parsed into it); the rest sits above the memory, notes and
//! debug-info layers and below `kernel/` (see `tests/layers.rs`).

pub mod x86_64;

pub use x86_64::kaslr::{locate, locate_virtual, Clues, ImageFacts, KaslrMethod, Located};
pub use x86_64::orc;
pub use x86_64::paging::{self, KernelLayout, KernelSpace};
pub use x86_64::regs::{PrStatus, QemuCpuState, Registers};
pub use x86_64::switch::SwitchFrame;
