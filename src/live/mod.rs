//! Live kernels: a QEMU guest through its gdbstub (its RAM read from the
//! QEMU process when QEMU runs on this host), the running kernel through
//! `/proc/kcore`.

pub mod kcore;
pub mod qemu;
pub mod qemu_host;
