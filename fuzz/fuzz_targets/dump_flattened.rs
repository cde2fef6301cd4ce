//! `Dump::from_bytes` on inputs that start like a flattened dump, then a few
//! physical reads through `MemorySource` and the notes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::open_dump(b"makedumpfile", data));
