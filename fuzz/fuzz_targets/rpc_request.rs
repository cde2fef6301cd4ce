//! `kpeek rpc` over a channel whose input is the fuzz input, as GDB's
//! side: requests (`next_request`, then the program counters and registers
//! they carry) and memory replies (`read_phys`, which asks GDB for memory
//! and decodes its JSON answer).
#![no_main]

use kpeek::memory::MemorySource;
use kpeek::rpc::{GdbMemory, Incoming};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let gdb = GdbMemory::new(
        Box::new(std::io::Cursor::new(data.to_vec())),
        Box::new(std::io::sink()),
    );
    let mut buf = [0u8; 8];
    for _ in 0..64 {
        match gdb.next_request() {
            // A line that is not a request is answered and the channel goes on.
            Ok(Some(Incoming::Bad { .. })) => continue,
            Ok(Some(Incoming::Request(req))) => {
                let _ = req.pcs();
                let _ = req.cpu_registers();
                // The next line, as GDB's answer to a memory read.
                let _ = gdb.read_phys(
                    kpeek::addr::PhysAddr(req.id),
                    &mut buf[..(req.id % 9) as usize],
                );
            }
            Ok(None) => break,
            Err(_) => {
                if gdb.read_phys(kpeek::addr::PhysAddr(0), &mut buf).is_err() {
                    continue;
                }
            }
        }
    }
});
