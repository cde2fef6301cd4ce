//! The accept loop: every connection gets its own session over the same
//! [`Snapshot`], so one GDB that hangs or sends garbage never keeps the next
//! one out.

use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener, TcpStream};

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::{run_blocking, DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::Target;

use super::{Session, Snapshot};

/// GDB may ask for up to half of this in one memory read. gdbstub
/// advertises it (`PacketSize=4000`, in hex) and receives packets into a
/// buffer of exactly this size: a longer packet ends the session instead of
/// growing the buffer (a `$` followed by 500 MiB without a `#` grew the
/// server to 560 MB).
pub const PACKET_BUFFER: usize = 0x4000;

/// What happened to a connection, for the caller to log.
#[derive(Debug)]
pub enum Event<'a> {
    /// A client connected.
    Connected(SocketAddr),
    /// Its session ended: `Ok` with how GDB left, or the error that ended it
    /// (a malformed packet, a dropped connection).
    Ended(SocketAddr, &'a Result<DisconnectReason, String>),
    /// `accept` failed; the loop goes on.
    AcceptFailed(&'a io::Error),
}

/// Serve `snap` to every client that connects to `listener`, each in its
/// own thread, until the process is stopped.
pub fn serve(snap: &Snapshot<'_>, listener: &TcpListener, events: &(dyn Fn(Event<'_>) + Sync)) {
    std::thread::scope(|scope| {
        for conn in listener.incoming() {
            match conn {
                Ok(stream) => {
                    scope.spawn(move || {
                        let peer = stream
                            .peer_addr()
                            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                        events(Event::Connected(peer));
                        let end = Buffered::new(stream)
                            .map_err(|e| e.to_string())
                            .and_then(|conn| serve_connection(snap, conn));
                        events(Event::Ended(peer, &end));
                    });
                }
                Err(e) => {
                    events(Event::AcceptFailed(&e));
                    // Out of file descriptors and the like: do not spin.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    });
}

/// Run one GDB session on `conn` (a `TcpStream`, or a `&mut` [`ScriptedClient`])
/// until GDB detaches or the connection breaks.
pub fn serve_connection<C>(snap: &Snapshot<'_>, conn: C) -> Result<DisconnectReason, String>
where
    C: ConnectionExt<Error = io::Error>,
{
    // A borrowed buffer: gdbstub's own (a `Vec`) grows with the packet.
    let mut packet = vec![0u8; PACKET_BUFFER];
    let gdb = GdbStub::builder(conn)
        .with_packet_buffer(&mut packet)
        .build()
        .map_err(|e| e.to_string())?;
    let mut session = Session::new(snap);
    gdb.run_blocking::<EventLoop<'_, '_, C>>(&mut session)
        .map_err(|e| {
            let e = e.to_string();
            if e.contains("oversized packet") {
                format!(
                    "dropped: a packet longer than the {PACKET_BUFFER} bytes advertised \
                     (PacketSize={PACKET_BUFFER:x})"
                )
            } else if e.contains("UnexpectedHeader") {
                format!("dropped: the client sent bytes that are not GDB packets ({e})")
            } else {
                e
            }
        })
}

/// A client that sends a fixed script of bytes, then hangs up: what GDB
/// would have sent, for the fuzz target `serve_packets` and the tests. Its
/// reads end with `UnexpectedEof` when the script ends, which ends the
/// session; what the server answers is kept only if asked for.
pub struct ScriptedClient<'a> {
    script: &'a [u8],
    pos: usize,
    replies: Option<Vec<u8>>,
}

impl<'a> ScriptedClient<'a> {
    /// A client sending `script`; `keep_replies` keeps the server's bytes.
    pub fn new(script: &'a [u8], keep_replies: bool) -> ScriptedClient<'a> {
        ScriptedClient {
            script,
            pos: 0,
            replies: keep_replies.then(Vec::new),
        }
    }

    /// How many bytes of the script the server has read.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// What the server sent (empty unless `keep_replies`).
    pub fn replies(&self) -> &[u8] {
        self.replies.as_deref().unwrap_or_default()
    }
}

impl Connection for &mut ScriptedClient<'_> {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        if let Some(r) = &mut self.replies {
            r.push(byte);
        }
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(r) = &mut self.replies {
            r.extend_from_slice(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ConnectionExt for &mut ScriptedClient<'_> {
    fn read(&mut self) -> io::Result<u8> {
        let byte = self.peek()?.ok_or(io::ErrorKind::UnexpectedEof)?;
        self.pos += 1;
        Ok(byte)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.script.get(self.pos).copied())
    }
}

/// A TCP connection read and written through buffers. gdbstub's own
/// `TcpStream` connection makes two system calls per byte read and one per
/// byte written: an 8 KiB memory reply (16 KiB of hex) took 30 ms.
pub struct Buffered {
    stream: TcpStream,
    input: Vec<u8>,
    /// The next byte of `input` to hand out.
    at: usize,
    output: Vec<u8>,
    /// Where the client is in the packet framing, to bound what it sends.
    framing: Framing,
}

/// The client's bytes as the framing sees them: between packets, or inside
/// one (with its length so far). (Between packets gdbstub itself ends the
/// session at the first byte that is not `$`, an ack or an interrupt.)
#[derive(Clone, Copy, Debug)]
enum Framing {
    Between,
    Body { len: usize },
    Checksum { left: u8 },
}

impl Framing {
    /// Account for one byte from the client: an error ends the connection.
    fn see(&mut self, byte: u8) -> io::Result<()> {
        let refuse = |what: String| Err(io::Error::new(io::ErrorKind::InvalidData, what));
        *self = match (*self, byte) {
            (Framing::Between, b'$') => Framing::Body { len: 1 },
            (Framing::Between, _) => Framing::Between,
            (Framing::Body { .. }, b'#') => Framing::Checksum { left: 2 },
            // `$`, the body, `#` and two checksum digits must fit.
            (Framing::Body { len }, _) if len + 1 + 3 > PACKET_BUFFER => {
                return refuse(format!(
                    "dropped: a packet longer than the {PACKET_BUFFER} bytes advertised \
                     (PacketSize={PACKET_BUFFER:x})"
                ))
            }
            (Framing::Body { len }, _) => Framing::Body { len: len + 1 },
            (Framing::Checksum { left: 1 }, _) => Framing::Between,
            (Framing::Checksum { left }, _) => Framing::Checksum { left: left - 1 },
        };
        Ok(())
    }
}

impl Buffered {
    /// Wraps a connected stream (blocking, no Nagle delay).
    pub fn new(stream: TcpStream) -> io::Result<Buffered> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(false)?;
        Ok(Buffered {
            stream,
            input: Vec::with_capacity(1 << 16),
            at: 0,
            output: Vec::with_capacity(PACKET_BUFFER * 2 + 16),
            framing: Framing::Between,
        })
    }
}

impl Connection for Buffered {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.output.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.output.extend_from_slice(buf);
        Ok(())
    }

    /// gdbstub flushes after every packet and ack.
    fn flush(&mut self) -> io::Result<()> {
        io::Write::write_all(&mut self.stream, &self.output)?;
        self.output.clear();
        Ok(())
    }
}

impl ConnectionExt for Buffered {
    fn read(&mut self) -> io::Result<u8> {
        if self.at == self.input.len() {
            self.input.resize(1 << 16, 0);
            let n = io::Read::read(&mut self.stream, &mut self.input)?;
            self.input.truncate(n);
            self.at = 0;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.at += 1;
        let byte = self.input[self.at - 1];
        self.framing.see(byte)?;
        Ok(byte)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        if let Some(&b) = self.input.get(self.at) {
            return Ok(Some(b));
        }
        self.stream.set_nonblocking(true)?;
        let mut b = [0u8];
        let peeked = TcpStream::peek(&self.stream, &mut b);
        self.stream.set_nonblocking(false)?;
        match peeked {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(Some(b[0])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The blocking event loop. The target never runs, so there is never a stop
/// to wait for: only bytes from GDB.
struct EventLoop<'s, 'p, C>(PhantomData<(&'s Snapshot<'p>, C)>);

impl<'s, 'p, C> run_blocking::BlockingEventLoop for EventLoop<'s, 'p, C>
where
    C: ConnectionExt<Error = io::Error>,
{
    type Target = Session<'s, 'p>;
    type Connection = C;
    type StopReason = MultiThreadStopReason<u64>;

    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        _target: &mut Self::Target,
        conn: &mut Self::Connection,
    ) -> Result<
        run_blocking::Event<Self::StopReason>,
        run_blocking::WaitForStopReasonError<
            <Self::Target as Target>::Error,
            <Self::Connection as Connection>::Error,
        >,
    > {
        let byte = conn
            .read()
            .map_err(run_blocking::WaitForStopReasonError::Connection)?;
        Ok(run_blocking::Event::IncomingData(byte))
    }

    fn on_interrupt(
        _target: &mut Self::Target,
    ) -> Result<Option<Self::StopReason>, <Self::Target as Target>::Error> {
        Ok(Some(MultiThreadStopReason::Signal(Signal::SIGINT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(bytes: impl IntoIterator<Item = u8>) -> io::Result<()> {
        let mut f = Framing::Between;
        bytes.into_iter().try_for_each(|b| f.see(b))
    }

    #[test]
    fn packets_up_to_the_advertised_size_pass() {
        let body = vec![b'a'; PACKET_BUFFER - 4];
        let mut p = vec![b'$'];
        p.extend(&body);
        p.extend(b"#00+");
        assert!(feed(p.iter().copied().cycle().take(p.len() * 3)).is_ok());
    }

    #[test]
    fn a_longer_packet_is_dropped() {
        let mut p = vec![b'$'];
        p.extend(vec![b'a'; PACKET_BUFFER - 3]);
        let e = feed(p).expect_err("too long");
        assert!(e.to_string().contains("PacketSize=4000"), "{e}");
    }
}
