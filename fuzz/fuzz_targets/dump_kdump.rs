//! `Dump::from_bytes` on inputs that start like this format, then a few
//! physical reads through `MemorySource` and the notes.
#![no_main]

use kpeek::dump::Dump;
use kpeek::memory::MemorySource;
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8] = b"KDUMP   ";

fuzz_target!(|data: &[u8]| {
    // Keep the magic so every input reaches this format's parser.
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(data.get(MAGIC.len().min(data.len())..).unwrap_or_default());
    let Ok(dump) = Dump::from_bytes(std::path::Path::new("fuzz"), bytes) else {
        return;
    };
    let notes = dump.notes();
    let _ = (notes.prstatus.len(), notes.qemu_cpus.len());
    if let Some(info) = dump.vmcoreinfo() {
        let _ = info.get("OSRELEASE");
    }
    let mut page = [0u8; 4096];
    for addr in [
        0u64,
        0x1000,
        0x10_0000,
        0x100_0000,
        u64::MAX - 0xfff,
        u64::MAX,
    ] {
        let _ = dump.read_phys(kpeek::addr::PhysAddr(addr), &mut page);
        let _ = dump.read_phys_u64(kpeek::addr::PhysAddr(addr.wrapping_add(4092)));
    }
});
