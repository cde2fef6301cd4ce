//! The QEMU gdbstub client's reply decoding: run-length/escape decoding,
//! hex, and the target-description parser (through `kpeek::fuzzing`).
#![no_main]

use kpeek::fuzzing::qemu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let payload = qemu::unescape(data);
    let _ = qemu::from_hex(&payload);
    let _ = qemu::from_hex(data);
    // The input as target-description documents, split at NULs.
    let docs: Vec<String> = data
        .split(|&b| b == 0)
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect();
    let _ = qemu::parse_registers(&docs);
});
