//! The JSON-lines protocol `gdb-scripts/kpeek.py` speaks with `kpeek rpc`.
//!
//! GDB → kpeek, one request per command:
//! `{"id": 1, "argv": ["ps", "--style", "lx"], "pcs": ["0xffffffff81…", …]}`
//! (`pcs`: the CPUs' program counters, to narrow the KASLR search).
//!
//! While it runs, kpeek asks for memory, and GDB answers from whatever
//! target it is attached to:
//! `{"read": "0xffff888001234000", "len": 2048}` →
//! `{"data": "<hex>"}` or `{"error": "Cannot access memory at address 0x…"}`.
//!
//! kpeek → GDB, when the command is done:
//! `{"id": 1, "status": 0, "output": "…", "error": null, "reads": 37, "bytes": 91136}`.
//!
//! A first `{"id": 0, "hello": true}` is answered `{"id": 0, "version": "…"}`.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::addr::PhysAddr;
use crate::memory::MemorySource;
use crate::{Error, Result};

/// Reads larger than this are split: GDB and its stubs cope better with
/// moderate requests, and one failing page then fails less.
const MAX_READ: usize = 16 * 1024;

/// A request from the GDB side.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    pub id: u64,
    /// `{"hello": true}` asks for the version.
    #[serde(default)]
    pub hello: bool,
    /// `{"prepare": true}`: open the vmlinux and load the types the
    /// listings need now (kpeek.py sends it when it is sourced), so the
    /// first command is as fast as the next ones.
    #[serde(default)]
    pub prepare: bool,
    /// The kpeek command line, without `kpeek` and without `--vmlinux`.
    #[serde(default)]
    pub argv: Vec<String>,
    /// The CPUs' program counters as `"0x…"` strings.
    #[serde(default)]
    pub pcs: Vec<String>,
    /// Each CPU's registers (GDB's first threads, in order: QEMU's vCPUs,
    /// or `kpeek serve`'s CPU threads), by GDB's register names (`rip`,
    /// `rsp`, `rbp`, `cs`, ...) as `"0x…"` strings. Used to unwind the
    /// tasks that are running.
    #[serde(default)]
    pub cpus: Vec<std::collections::BTreeMap<String, String>>,
}

impl Request {
    /// The program counters as numbers.
    pub fn pcs(&self) -> Vec<u64> {
        self.pcs
            .iter()
            .filter_map(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).ok())
            .collect()
    }

    /// The CPUs' registers, as far as GDB gave them (missing ones are 0).
    pub fn cpu_registers(&self) -> Vec<crate::arch::Registers> {
        self.cpus
            .iter()
            .map(|regs| {
                crate::arch::Registers::from_named(|name| {
                    let v = regs.get(name)?;
                    u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
                })
            })
            .collect()
    }
}

/// The response to a request.
#[derive(Debug, Serialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// kpeek's version, for a hello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The exit status the command line would have had.
    pub status: u8,
    /// What the command printed.
    pub output: String,
    /// The error, if it failed.
    pub error: Option<String>,
    /// Memory requests made to GDB.
    pub reads: u64,
    /// Bytes they returned.
    pub bytes: u64,
}

#[derive(Deserialize)]
struct ReadReply {
    data: Option<String>,
    error: Option<String>,
}

/// Kernel memory as GDB sees it, fetched over the JSON-lines channel.
/// Addresses are kernel *virtual* addresses (see
/// [`crate::arch::KernelSpace::over_virtual`]).
pub struct GdbMemory {
    channel: Mutex<(Box<dyn BufRead + Send>, Box<dyn Write + Send>)>,
    reads: AtomicU64,
    bytes: AtomicU64,
}

impl GdbMemory {
    /// A channel over the given input (GDB's replies) and output.
    pub fn new(input: Box<dyn BufRead + Send>, output: Box<dyn Write + Send>) -> GdbMemory {
        GdbMemory {
            channel: Mutex::new((input, output)),
            reads: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// The next request, or `None` when GDB closed the channel. A line
    /// that is not a request is [`Incoming::Bad`], to be answered with an
    /// error; the channel goes on. Lines over [`MAX_REQUEST`] bytes are
    /// refused unread.
    pub fn next_request(&self) -> Result<Option<Incoming>> {
        let mut ch = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        let line = loop {
            let line = match read_bounded_line(&mut *ch.0, MAX_REQUEST)
                .map_err(|e| Error::Live(format!("rpc: reading a request: {e}")))?
            {
                None => return Ok(None),
                Some(Line::TooLong) => {
                    return Ok(Some(Incoming::Bad {
                        id: None,
                        error: format!("rpc: a request longer than {MAX_REQUEST} bytes: refused"),
                    }))
                }
                Some(Line::Text(line)) => line,
            };
            if !line.trim().is_empty() {
                break line;
            }
        };
        Ok(Some(match serde_json::from_str(&line) {
            Ok(request) => Incoming::Request(request),
            Err(e) => Incoming::Bad {
                // The id, if the line has one, so GDB can match the answer.
                id: serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id")?.as_u64()),
                error: format!("rpc: bad request {}: {e}", crate::text::excerpt(&line, 80)),
            },
        }))
    }

    /// Send a response.
    pub fn respond(&self, response: &Response) -> Result<()> {
        let mut ch = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        let text = serde_json::to_string(response).map_err(|e| Error::Output(e.to_string()))?;
        writeln!(ch.1, "{text}")
            .and_then(|()| ch.1.flush())
            .map_err(|e| Error::Live(format!("rpc: {e}")))
    }

    /// Counters since the last call: (requests, bytes).
    pub fn take_counts(&self) -> (u64, u64) {
        (
            self.reads.swap(0, Ordering::Relaxed),
            self.bytes.swap(0, Ordering::Relaxed),
        )
    }

    fn read_once(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut ch = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        let (input, output) = &mut *ch;
        writeln!(output, "{{\"read\":\"{addr:#x}\",\"len\":{}}}", buf.len())
            .and_then(|()| output.flush())
            .map_err(|e| Error::Live(format!("rpc: asking GDB for memory: {e}")))?;
        let mut line = String::new();
        if input
            .read_line(&mut line)
            .map_err(|e| Error::Live(format!("rpc: {e}")))?
            == 0
        {
            return Err(Error::Live(
                "rpc: GDB went away while kpeek was reading memory".into(),
            ));
        }
        let reply: ReadReply = serde_json::from_str(&line)
            .map_err(|e| Error::Live(format!("rpc: bad memory reply {line:?}: {e}")))?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let answered = reply.data.as_ref().map(|hex| hex.len() / 2);
        match (reply.data, reply.error) {
            (Some(hex), _) if hex.len() == buf.len() * 2 => {
                // By bytes: a reply with a multi-byte character is not hex.
                let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                for (b, pair) in buf.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
                    *b = nibble(pair[0])
                        .zip(nibble(pair[1]))
                        .map(|(hi, lo)| hi << 4 | lo)
                        .ok_or_else(|| Error::Live("rpc: memory reply is not hex".into()))?;
                }
                self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            (_, Some(why)) => Err(Error::fault("virtual", addr, buf.len(), why)),
            _ => Err(Error::Live(match answered {
                // The bytes of the reply's `data`, not of its JSON line.
                Some(n) => format!("rpc: GDB answered {n} bytes for a {}-byte read", buf.len()),
                None => format!(
                    "rpc: GDB's reply to a {}-byte read has neither data nor an error",
                    buf.len()
                ),
            })),
        }
    }
}

impl MemorySource for GdbMemory {
    /// `addr` is a kernel virtual address (the source is a debugger's view).
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        for (i, chunk) in buf.chunks_mut(MAX_READ).enumerate() {
            self.read_once(addr.0 + (i * MAX_READ) as u64, chunk)?;
        }
        Ok(())
    }
}

/// The longest request line `kpeek rpc` takes: a command line, some
/// program counters and registers.
pub const MAX_REQUEST: usize = 1 << 20;

/// What came in on the channel.
#[derive(Debug)]
pub enum Incoming {
    /// A request.
    Request(Request),
    /// A line that is not one: answer with the error and go on.
    Bad {
        /// The line's `id`, if it had one.
        id: Option<u64>,
        /// What is wrong with it.
        error: String,
    },
}

enum Line {
    Text(String),
    TooLong,
}

/// One line of at most `max` bytes; a longer one is skipped to its end
/// without being kept. `None` at the end of the input.
fn read_bounded_line(input: &mut dyn BufRead, max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if line.len() + take > max + 1 {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        input.consume(take);
        if done {
            break;
        }
    }
    Ok(Some(if too_long {
        Line::TooLong
    } else {
        Line::Text(String::from_utf8_lossy(&line).into_owned())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_go_out_as_json_and_faults_come_back_as_faults() {
        let replies =
            "{\"data\":\"4c696e\"}\n{\"error\":\"Cannot access memory at address 0x10\"}\n";
        let out: Vec<u8> = Vec::new();
        let mem = GdbMemory::new(
            Box::new(Cursor::new(replies.as_bytes().to_vec())),
            Box::new(out),
        );
        let mut b = [0u8; 3];
        mem.read_phys(PhysAddr(0xffff_8880_0000_1000), &mut b)
            .expect("read");
        assert_eq!(&b, b"Lin");
        let err = mem.read_phys(PhysAddr(0x10), &mut b).expect_err("fault");
        assert_eq!(err.code(), "fault");
        assert!(
            mem.read_phys(PhysAddr(0x20), &mut b).is_err(),
            "GDB went away"
        );
        assert_eq!(mem.take_counts(), (2, 3));
    }

    /// A reply of the right length in bytes but with a two-byte character
    /// is an error (slicing it every two bytes panicked), and so is one
    /// with signs, which `from_str_radix` alone would take.
    #[test]
    fn a_memory_reply_that_is_not_hex_is_an_error() {
        for reply in ["{\"data\":\"a\u{e9}a\"}\n", "{\"data\":\"+f+f\"}\n"] {
            let mem = GdbMemory::new(
                Box::new(Cursor::new(reply.as_bytes().to_vec())),
                Box::new(std::io::sink()),
            );
            let mut b = [0u8; 2];
            let err = mem.read_phys(PhysAddr(0x1000), &mut b).expect_err(reply);
            assert!(err.to_string().contains("not hex"), "{err}");
        }
    }

    #[test]
    fn bad_and_oversized_requests_are_answered_and_the_channel_goes_on() {
        let mut input = b"{\"id\": 7, \"argv\": 5}\nnot json at all\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_REQUEST + 10));
        input.extend_from_slice(b"\n{\"id\": 9, \"argv\": [\"ps\"]}\n");
        let mem = GdbMemory::new(Box::new(Cursor::new(input)), Box::new(std::io::sink()));
        match mem.next_request().expect("read") {
            Some(Incoming::Bad { id: Some(7), error }) => {
                assert!(error.contains("bad request"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        match mem.next_request().expect("read") {
            Some(Incoming::Bad { id: None, error }) => assert!(error.len() < 200, "{error}"),
            other => panic!("{other:?}"),
        }
        match mem.next_request().expect("read") {
            Some(Incoming::Bad { id: None, error }) => {
                assert!(error.contains("longer than"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        match mem.next_request().expect("read") {
            Some(Incoming::Request(r)) => assert_eq!((r.id, r.argv.len()), (9, 1)),
            other => panic!("{other:?}"),
        }
        assert!(mem.next_request().expect("end").is_none());
    }

    /// A short reply counts the bytes of its `data`, not of its JSON line
    /// (it said "7 bytes" for `{"data":"00"}`).
    #[test]
    fn a_short_reply_is_counted_in_its_own_bytes() {
        for (reply, want) in [
            ("{\"data\":\"00\"}\n", "answered 1 bytes for a 4-byte read"),
            ("{}\n", "neither data nor an error"),
        ] {
            let mem = GdbMemory::new(
                Box::new(Cursor::new(reply.as_bytes().to_vec())),
                Box::new(std::io::sink()),
            );
            let err = mem
                .read_phys(PhysAddr(0x1000), &mut [0u8; 4])
                .expect_err(reply);
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
