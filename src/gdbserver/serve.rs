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

/// GDB may ask for up to half of this in one memory read.
const PACKET_BUFFER: usize = 0x4000;

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
                        let end = serve_connection(snap, stream);
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

/// Run one GDB session on `stream` until GDB detaches or the connection
/// breaks.
pub fn serve_connection(
    snap: &Snapshot<'_>,
    stream: TcpStream,
) -> Result<DisconnectReason, String> {
    let gdb = GdbStub::builder(stream)
        .packet_buffer_size(PACKET_BUFFER)
        .build()
        .map_err(|e| e.to_string())?;
    let mut session = Session::new(snap);
    gdb.run_blocking::<EventLoop<'_, '_>>(&mut session)
        .map_err(|e| e.to_string())
}

/// The blocking event loop. The target never runs, so there is never a stop
/// to wait for: only bytes from GDB.
struct EventLoop<'s, 'p>(PhantomData<&'s Snapshot<'p>>);

impl<'s, 'p> run_blocking::BlockingEventLoop for EventLoop<'s, 'p> {
    type Target = Session<'s, 'p>;
    type Connection = TcpStream;
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
