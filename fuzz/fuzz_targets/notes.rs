//! `Notes::parse` on the input as an ELF note blob, and `VmcoreInfo::parse`
//! on it as VMCOREINFO text, then the typed accessors.
#![no_main]

use kpeek::notes::{Notes, VmcoreInfo};
use libfuzzer_sys::fuzz_target;

fn poke(info: &VmcoreInfo) {
    let _ = info.entries().count();
    let _ = info.osrelease();
    let _ = info.symbol("_stext");
    let _ = info.number("OFFSET(list_head.next)");
    let _ = info.kernel_offset();
    let _ = info.crash_time();
    let _ = info.build_id();
    let _ = info.page_size();
}

fuzz_target!(|data: &[u8]| {
    let notes = Notes::parse(data);
    for p in &notes.prstatus {
        let _ = p.regs.user_mode();
    }
    if let Some(info) = &notes.vmcoreinfo {
        poke(info);
    }
    poke(&VmcoreInfo::parse(data));
});
