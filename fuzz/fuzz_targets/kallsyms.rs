//! The kallsyms decoder over memory that is the input: the first 41 bytes
//! say where the tables are (offsets into the rest), the rest is the kernel
//! image at `_text`. Also the shape search `Location::find` over it.
#![no_main]

use kpeek::kernel::kallsyms::{AddressTable, Kallsyms, Location};
use libfuzzer_sys::fuzz_target;

const TEXT: u64 = 0xffff_ffff_8100_0000;

fuzz_target!(|data: &[u8]| {
    let Some((head, image)) = data.split_at_checked(41) else {
        return;
    };
    let at = |i: usize| {
        let v = u64::from_le_bytes(head[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        TEXT.wrapping_add(v % (image.len() as u64 + 64))
    };
    let read = |addr: u64, buf: &mut [u8]| -> kpeek::Result<()> {
        let start = addr.wrapping_sub(TEXT) as usize;
        match image.get(start..start.saturating_add(buf.len())) {
            Some(b) if addr >= TEXT => {
                buf.copy_from_slice(b);
                Ok(())
            }
            _ => Err(kpeek::Error::Fault {
                addr,
                len: buf.len() as u64,
                space: "virtual",
                why: "outside the fuzz input".into(),
            }),
        }
    };
    let addresses = if head[40] & 1 == 0 {
        AddressTable::Relative {
            offsets: at(4),
            relative_base: TEXT,
        }
    } else {
        AddressTable::Absolute { addresses: at(4) }
    };
    let loc = Location {
        num_syms: at(0),
        names: at(1),
        token_table: at(2),
        token_index: at(3),
        addresses,
    };
    if let Ok(k) = Kallsyms::read(&read, &loc) {
        let _ = k.symbols().len();
        let _ = k.lookup("_text");
    }
    if let Some(loc) = Location::find(&read, TEXT, image.len() as u64) {
        if let Ok(k) = Kallsyms::read(&read, &loc) {
            let _ = k.lookup("_stext");
        }
    }
});
