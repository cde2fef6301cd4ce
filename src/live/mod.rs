//! Live kernels: a QEMU guest through its gdbstub, the running kernel
//! through `/proc/kcore`.

pub mod kcore;
pub mod qemu;
