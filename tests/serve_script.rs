//! `kpeek serve`'s packet path in-process: scripted clients (the bytes a GDB
//! would send) over a real fixture dump, through the `gdbstub` state machine
//! and kpeek's target, as the fuzz target `serve_packets` drives it. The
//! answers are checked against the guest's own /proc; the inputs the fuzzer
//! found are kept here as regression tests.

mod common;

use std::sync::OnceLock;

use common::{Fixture, Truth};
use gdbstub::stub::DisconnectReason;
use kpeek::gdbserver::{serve_connection, ScriptedClient, Snapshot};
use kpeek::kernel::{OpenOptions, Program};

/// The 6.1 kdump with its vmlinux, its snapshot and the guest's truth,
/// opened once for every test of this file.
struct Served {
    snap: Snapshot<'static>,
    truth: Truth,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let fx = Fixture::load("linux-6.1");
        let boot = fx.boot("kdump");
        let core = boot.dir.join("vmcore.kdump");
        let prog = Program::open(&fx.vmlinux(), &core, &OpenOptions::default()).expect("open");
        let prog: &'static Program = Box::leak(Box::new(prog));
        Served {
            snap: Snapshot::gather(prog).expect("snapshot"),
            truth: boot.truth(),
        }
    })
}

/// `+$body#checksum` for each body.
fn packets(bodies: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for body in bodies {
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        out.extend_from_slice(format!("+${body}#{sum:02x}").as_bytes());
    }
    out
}

/// Run `script` as one session; returns how it ended, how much of it the
/// server read, and the bodies of its reply packets (run-length encoding
/// undone), in order.
fn run(script: &[u8]) -> (Result<DisconnectReason, String>, usize, Vec<String>) {
    let mut client = ScriptedClient::new(script, true);
    let end = serve_connection(&served().snap, &mut client);
    let consumed = client.consumed();
    let mut bodies = Vec::new();
    let mut rest = client.replies();
    while let Some(start) = rest.iter().position(|&b| b == b'$') {
        let Some(len) = rest[start..].iter().position(|&b| b == b'#') else {
            break;
        };
        bodies.push(unrle(&rest[start + 1..start + len]));
        rest = &rest[start + len..];
    }
    (end, consumed, bodies)
}

/// Undo the remote protocol's run-length encoding: `X*n` is X repeated
/// `n - 29` more times.
fn unrle(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() {
            let last = *out.last().expect("a run after a byte");
            out.extend(std::iter::repeat_n(last, usize::from(body[i + 1] - 29)));
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("ASCII replies")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn a_scripted_session_answers_what_the_guest_said() {
    let truth = &served().truth;
    let version = &truth.files["/proc/version"];
    let banner = truth.kallsyms("linux_banner").expect("linux_banner");
    let text = truth.kallsyms("_text").expect("_text");
    let init = truth.tasks.iter().find(|t| t.tid == 1).expect("pid 1");
    let script = packets(&[
        "qSupported:multiprocess+;swbreak+;xmlRegisters=i386",
        "qOffsets",
        &format!("m{banner:x},{:x}", version.len()),
        "qThreadExtraInfo,1",
        "M0,1:00",
        "D",
    ]);
    let (end, consumed, replies) = run(&script);
    assert_eq!(end, Ok(DisconnectReason::Disconnect));
    assert_eq!(consumed, script.len());
    assert_eq!(replies.len(), 6, "{replies:?}");
    // The vmlinux's first PT_LOAD is `_text`: moved to where the guest had it.
    let want = format!("TextSeg={text:x};");
    assert!(replies[1].starts_with(&want), "{:?} vs {want}", replies[1]);
    // `linux_banner` is the text /proc/version printed.
    assert_eq!(String::from_utf8_lossy(&unhex(&replies[2])), *version);
    assert_eq!(
        String::from_utf8_lossy(&unhex(&replies[3])),
        format!("1 {}", init.comm)
    );
    assert!(
        replies[4].starts_with('E'),
        "a write answered {:?}",
        replies[4]
    );
}

#[test]
fn a_script_that_stops_anywhere_ends_the_session() {
    let script = packets(&["qSupported:multiprocess+", "qfThreadInfo", "m0,8", "g"]);
    for cut in 0..script.len() {
        let (end, consumed, _) = run(&script[..cut]);
        assert!(end.is_err(), "cut at {cut}: {end:?}");
        assert_eq!(consumed, cut, "cut at {cut}: {end:?}");
    }
    // A bad checksum or a malformed command ends a session too (gdbstub
    // treats both as fatal), before the rest is read.
    for script in [&b"$qfThreadInfo#00$g#67"[..], b"$qSupported#37$g#67"] {
        let (end, consumed, _) = run(script);
        assert!(end.is_err(), "{end:?}");
        assert_eq!(consumed, script.len() - 5);
    }
}
