//! What several targets share: the type lookups of the BTF and DWARF
//! targets, and the run of the three dump-format targets.
#![allow(dead_code)] // each target uses part of it

use kpeek::dump::Dump;
use kpeek::debuginfo::KernelDebugInfo;
use kpeek::memory::MemorySource;

/// Ask for the types and members kpeek's listings use.
pub fn poke_types(di: &KernelDebugInfo) {
    for name in ["task_struct", "list_head", "int", "char", "mm_struct", "x"] {
        let _ = di.find_type(name);
        let _ = di.type_size(name);
        let _ = di.layout(name, 64);
    }
    let _ = di.member("task_struct", "tasks.next");
    let _ = di.member("task_struct", "comm");
    let _ = di.member("list_head", "next");
    let _ = di.has_member("task_struct", "pid");
    let _ = di.enumerator("TASK_COMM_LEN");
}

/// `Dump::from_bytes` on `data` behind `magic` (so every input reaches
/// that format's parser), then the notes and physical reads at page edges
/// and the top of the address space.
pub fn open_dump(magic: &[u8], data: &[u8]) {
    let mut bytes = magic.to_vec();
    bytes.extend_from_slice(data.get(magic.len().min(data.len())..).unwrap_or_default());
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
}
