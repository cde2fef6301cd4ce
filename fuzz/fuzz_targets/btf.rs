//! `KernelDebugInfo::from_btf_bytes`, then type, member and layout lookups.
#![no_main]

use kpeek::debuginfo::KernelDebugInfo;
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(di) = KernelDebugInfo::from_btf_bytes(std::path::Path::new("fuzz"), data.to_vec(), 64) else {
        return;
    };
    common::poke_types(&di);
});
