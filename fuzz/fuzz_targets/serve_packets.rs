//! `kpeek serve`'s packet path: the `gdbstub` crate's state machine with
//! kpeek's target (src/gdbserver/) behind it, over a real dump, the input
//! being everything a GDB client sends on one connection. The session ends
//! when the input does (the client's reads fail with end of file).
//!
//! The dump is opened once per process, from the environment:
//! `KPEEK_FUZZ_CORE` (required) and `KPEEK_FUZZ_VMLINUX` (optional: without
//! it the dump is read alone, with its VMCOREINFO and BTF).
//!
//! The first byte picks how the rest is sent: odd, with every packet's
//! checksum set right first (so mutations reach the commands instead of
//! dying on a bad checksum, which ends a session); even, as it is.
#![no_main]

use std::path::PathBuf;

use kpeek::gdbserver::{serve_connection, ScriptedClient, Snapshot};
use kpeek::kernel::program::{OpenOptions, Program};
use libfuzzer_sys::fuzz_target;

fn open() -> kpeek::Result<Program> {
    let Some(core) = std::env::var_os("KPEEK_FUZZ_CORE").map(PathBuf::from) else {
        eprintln!(
            "serve_packets: set KPEEK_FUZZ_CORE to a dump (and KPEEK_FUZZ_VMLINUX to its vmlinux)"
        );
        std::process::exit(2);
    };
    let options = OpenOptions::default();
    match std::env::var_os("KPEEK_FUZZ_VMLINUX") {
        Some(vmlinux) => Program::open(&PathBuf::from(vmlinux), &core, &options),
        None => Program::open_without_vmlinux(&core, &options),
    }
}

thread_local! {
    /// The dump and its threads, gathered once (libFuzzer runs the target
    /// on one thread) and kept for the life of the process.
    static SNAPSHOT: &'static Snapshot<'static> = {
        let snap = open().and_then(|prog| Snapshot::gather(Box::leak(Box::new(prog))));
        match snap {
            Ok(snap) => Box::leak(Box::new(snap)),
            Err(e) => {
                eprintln!("serve_packets: cannot open the dump: {e}");
                std::process::exit(2);
            }
        }
    };
}

/// Set the two hex digits after every `$...#` to the packet's checksum.
fn with_checksums(script: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = script.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i] != b'$' {
            i += 1;
            continue;
        }
        let Some(len) = out[i + 1..].iter().position(|&b| b == b'#') else {
            break;
        };
        let hash = i + 1 + len;
        let sum = out[i + 1..hash].iter().fold(0u8, |a, &b| a.wrapping_add(b));
        for (k, digit) in [sum >> 4, sum & 0xf].into_iter().enumerate() {
            if let Some(b) = out.get_mut(hash + 1 + k) {
                *b = HEX[usize::from(digit)];
            }
        }
        i = hash + 3;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, script)) = data.split_first() else {
        return;
    };
    let script = if mode & 1 == 1 {
        with_checksums(script)
    } else {
        script.to_vec()
    };
    SNAPSHOT.with(|snap| {
        let mut client = ScriptedClient::new(&script, false);
        let _ = serve_connection(snap, &mut client);
    });
});
