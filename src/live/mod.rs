//! Live kernels: a QEMU guest through its gdbstub.

pub mod qemu;
