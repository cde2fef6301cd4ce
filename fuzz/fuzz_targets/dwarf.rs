//! `KernelDebugInfo::from_bytes` on a vmlinux-shaped ELF file, then type,
//! member, layout and symbol lookups.
#![no_main]

use kpeek::debuginfo::KernelDebugInfo;
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(di) = KernelDebugInfo::from_bytes(std::path::Path::new("fuzz"), data) else {
        return;
    };
    let _ = di.symbol("init_task");
    common::poke_types(&di);
});
