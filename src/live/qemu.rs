//! A live QEMU guest through QEMU's gdbstub (the GDB remote protocol).
//!
//! kpeek speaks the protocol itself: packets `$data#ck` with `+`/`-` acks
//! (QEMU has no no-ack mode), the target description to learn where `cr3`
//! is, `g` per vCPU, and `m` reads of at most 2048 bytes of **physical**
//! memory (`Qqemu.PhyMemMode:1`), so translation is kpeek's own page walk and
//! does not depend on which vCPU is selected or whether it is in user mode.
//! Connecting stops the guest; dropping the connection restores
//! `PhyMemMode:0` and detaches, which lets the guest run again.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use crate::addr::PhysAddr;
use crate::arch::{PrStatus, QemuCpuState, Registers};
use crate::memory::MemorySource;
use crate::notes::Notes;
use crate::{Error, Result};

/// QEMU refuses `m` packets for more than this many bytes.
const MAX_READ: usize = 2048;
/// Pages kept after reading (4 KiB each).
const CACHE_PAGES: usize = 4096;
/// The longest packet believed (kpeek's largest replies are a few KiB):
/// a stub that streams more without a `#` is broken or hostile.
const MAX_PACKET: usize = 1 << 20;
/// More threads than QEMU gives a guest vCPUs.
const MAX_THREADS: usize = 1 << 16;

/// A connection to QEMU's gdbstub.
pub struct QemuGdb {
    conn: Mutex<Conn>,
    /// The stub speaks multiprocess thread ids (`p1.1`): detach with `D;1`.
    multiprocess: bool,
    /// Where it is.
    pub address: String,
    /// The registers of each vCPU, as QEMU reported them when kpeek connected.
    pub cpus: Vec<QemuCpuState>,
    /// Each vCPU's general registers, for unwinding what it runs.
    pub registers: Vec<Registers>,
    /// Packets sent so far (for benchmarks: requests, not bytes, cost time).
    pub packets: std::sync::atomic::AtomicU64,
    /// QEMU's thread id of each vCPU, in CPU order (`01`, or `p01.01`).
    pub vcpu_ids: Vec<String>,
    /// The registers of a `g` reply: (name, byte offset, size), in order.
    pub layout: Vec<(String, usize, usize)>,
}

struct Conn {
    stream: TcpStream,
    /// Received bytes not yet taken.
    buf: std::collections::VecDeque<u8>,
    /// Where the socket reads into (allocated once: a read per packet).
    chunk: Box<[u8]>,
    cache: std::collections::HashMap<u64, Box<[u8]>>,
    /// [`QemuGdb::detach`] ran.
    detached: bool,
    /// Hand `O` (console output) packets to the caller instead of skipping
    /// them: the output of a `qRcmd` monitor command.
    keep_output: bool,
}

fn proto(address: &str, what: impl std::fmt::Display) -> Error {
    Error::Live(format!("QEMU gdbstub at {address}: {what}"))
}

impl Conn {
    fn send(&mut self, address: &str, payload: &[u8]) -> Result<Vec<u8>> {
        let sum = payload.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        let mut packet = Vec::with_capacity(payload.len() + 4);
        packet.push(b'$');
        packet.extend_from_slice(payload);
        packet.extend_from_slice(format!("#{sum:02x}").as_bytes());
        if std::env::var_os("KPEEK_TRACE_RSP").is_some() {
            eprintln!("kpeek: rsp -> {}", String::from_utf8_lossy(payload));
        }
        // Only `?` asks for a stop reply; any other one is QEMU announcing,
        // unasked, that it stopped the guest as we connected: skip it.
        let wants_stop = payload == b"?";
        let reply = |conn: &mut Conn| -> Result<Vec<u8>> {
            loop {
                let r = conn.receive(address)?;
                if wants_stop || !matches!(r.first(), Some(b'T' | b'S')) {
                    return Ok(r);
                }
            }
        };
        for _attempt in 0..3 {
            self.stream
                .write_all(&packet)
                .map_err(|e| proto(address, format!("send: {e}")))?;
            match self.byte(address)? {
                b'+' => return reply(self),
                b'-' => continue,
                // A packet before the ack (the stop announcement): read on.
                b'$' => {
                    self.buf.push_front(b'$');
                    return reply(self);
                }
                other => {
                    return Err(proto(
                        address,
                        format!("expected an ack, got {:?}", other as char),
                    ))
                }
            }
        }
        Err(proto(address, "the stub keeps rejecting our packets"))
    }

    fn byte(&mut self, address: &str) -> Result<u8> {
        if let Some(b) = self.buf.pop_front() {
            return Ok(b);
        }
        let n = self
            .stream
            .read(&mut self.chunk)
            .map_err(|e| proto(address, format!("receive: {e}")))?;
        if n == 0 {
            return Err(proto(address, "the connection was closed"));
        }
        self.buf.extend(&self.chunk[1..n]);
        Ok(self.chunk[0])
    }

    /// Receive one packet, ack it, and return its decoded payload. `O`
    /// (console output) packets are skipped.
    fn receive(&mut self, address: &str) -> Result<Vec<u8>> {
        loop {
            while self.byte(address)? != b'$' {}
            let mut raw = Vec::new();
            loop {
                match self.byte(address)? {
                    b'#' => break,
                    _ if raw.len() >= MAX_PACKET => {
                        return Err(proto(
                            address,
                            format!("a packet longer than {MAX_PACKET} bytes"),
                        ))
                    }
                    b => raw.push(b),
                }
            }
            let hex = [self.byte(address)?, self.byte(address)?];
            let want = u8::from_str_radix(std::str::from_utf8(&hex).unwrap_or("zz"), 16).ok();
            let sum = raw.iter().fold(0u8, |a, &b| a.wrapping_add(b));
            if want != Some(sum) {
                self.stream.write_all(b"-").map_err(|e| proto(address, e))?;
                continue;
            }
            self.stream.write_all(b"+").map_err(|e| proto(address, e))?;
            let payload = unescape(&raw);
            if std::env::var_os("KPEEK_TRACE_RSP").is_some() {
                eprintln!(
                    "kpeek: rsp <- {}",
                    String::from_utf8_lossy(&payload[..payload.len().min(120)])
                );
            }
            if payload.first() == Some(&b'O') && payload != b"OK" && !self.keep_output {
                continue;
            }
            return Ok(payload);
        }
    }
}

/// Undo the protocol's run-length (`*`) and binary (`}`) encodings.
pub(crate) fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'}' if i + 1 < raw.len() => {
                out.push(raw[i + 1] ^ 0x20);
                i += 2;
            }
            b'*' if i + 1 < raw.len() && !out.is_empty() => {
                let last = *out.last().unwrap_or(&0);
                let n = raw[i + 1].saturating_sub(29) as usize;
                out.extend(std::iter::repeat_n(last, n));
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A register's value in a `g` reply (`g`, decoded), by its name in the
/// target description's `layout` (name, byte offset, size); at most 8 bytes.
pub fn named_register(layout: &[(String, usize, usize)], g: &[u8], name: &str) -> Option<u64> {
    let (_, offset, size) = layout.iter().find(|(n, _, _)| n == name)?;
    let b = g.get(*offset..offset.checked_add((*size).min(8))?)?;
    let mut v = [0u8; 8];
    v[..b.len()].copy_from_slice(b);
    Some(u64::from_le_bytes(v))
}

/// Hex digits to bytes (`None` for an odd count or a non-hex digit).
pub(crate) fn from_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// A register in the target description: name, byte offset in `g`, size.
#[derive(Clone, Debug)]
struct Reg {
    name: String,
    offset: usize,
    size: usize,
}

/// The registers of a target description, in `g` order.
fn parse_registers(xml_docs: &[String]) -> Vec<Reg> {
    let mut regs = Vec::new();
    let mut offset: usize = 0;
    for doc in xml_docs {
        // QEMU's i386-64bit.xml keeps some registers inside <!-- comments -->.
        let mut text = String::with_capacity(doc.len());
        let mut rest = doc.as_str();
        while let Some(start) = rest.find("<!--") {
            text.push_str(&rest[..start]);
            rest = rest[start..]
                .find("-->")
                .map_or("", |end| &rest[start + end + 3..]);
        }
        text.push_str(rest);
        for tag in text.split("<reg ").skip(1) {
            let attr = |name: &str| {
                let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
                let end = tag[start..].find('"')? + start;
                Some(tag[start..end].to_owned())
            };
            let (Some(name), Some(bits)) = (
                attr("name"),
                attr("bitsize").and_then(|b| b.parse::<usize>().ok()),
            ) else {
                continue;
            };
            // A size past any real register's ends the description (the
            // offsets after it would be meaningless, and could overflow).
            let Some(next) = offset.checked_add(bits / 8).filter(|_| bits <= 4096) else {
                return regs;
            };
            regs.push(Reg {
                name,
                offset,
                size: bits / 8,
            });
            offset = next;
        }
    }
    regs
}

/// Thin wrappers over the packet helpers, for `kpeek::fuzzing`.
#[doc(hidden)]
pub mod fuzzing {
    /// [`super::unescape`].
    pub fn unescape(raw: &[u8]) -> Vec<u8> {
        super::unescape(raw)
    }

    /// [`super::from_hex`].
    pub fn from_hex(s: &[u8]) -> Option<Vec<u8>> {
        super::from_hex(s)
    }

    /// [`super::parse_registers`], as (name, offset, size).
    pub fn parse_registers(xml_docs: &[String]) -> Vec<(String, usize, usize)> {
        super::parse_registers(xml_docs)
            .into_iter()
            .map(|r| (r.name, r.offset, r.size))
            .collect()
    }
}

/// Read one document of the target description (`qXfer:features:read`).
fn fetch_xml(conn: &mut Conn, address: &str, annex: &str) -> Result<String> {
    let mut doc = Vec::new();
    loop {
        let req = format!("qXfer:features:read:{annex}:{:x},{:x}", doc.len(), 4000);
        let reply = conn.send(address, req.as_bytes())?;
        let (kind, data) = reply
            .split_first()
            .ok_or_else(|| proto(address, "empty qXfer reply"))?;
        doc.extend_from_slice(data);
        match kind {
            b'l' => return Ok(String::from_utf8_lossy(&doc).into_owned()),
            b'm' if doc.len() < 1 << 20 => continue,
            _ => {
                return Err(proto(
                    address,
                    format!("cannot read {annex}: {}", String::from_utf8_lossy(&reply)),
                ))
            }
        }
    }
}

impl QemuGdb {
    /// Connect, stop the guest (QEMU does so on connect), learn the
    /// registers of every vCPU and switch to physical memory reads.
    pub fn connect(address: &str, timeout: Duration) -> Result<QemuGdb> {
        let addrs: Vec<_> = address
            .to_socket_addrs()
            .map_err(|e| proto(address, format!("bad address: {e}")))?
            .collect();
        let stream = addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, timeout).ok())
            .ok_or_else(|| {
                proto(
                    address,
                    "nothing is listening (start QEMU with -gdb tcp::PORT or -s)",
                )
            })?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| proto(address, e))?;
        stream.set_nodelay(true).map_err(|e| proto(address, e))?;
        let mut conn = Conn {
            stream,
            buf: Default::default(),
            chunk: vec![0u8; 65536].into_boxed_slice(),
            cache: Default::default(),
            detached: false,
            keep_output: false,
        };
        // No multiprocess: QEMU then takes a plain `D` to detach (with it, a bare
        // `D` is refused and the guest would stay stopped).
        let supported = conn.send(address, b"qSupported:xmlRegisters=i386")?;
        let feature = b"qXfer:features:read+";
        if !supported.windows(feature.len()).any(|w| w == feature) {
            return Err(proto(
                address,
                "the stub has no target description (qXfer:features:read)",
            ));
        }
        let stop = conn.send(address, b"?")?;
        if stop.is_empty() {
            return Err(proto(address, "no stop reply: is this a QEMU gdbstub?"));
        }
        // QEMU keeps multiprocess mode from any earlier debugger that asked
        // for it; its thread ids then look like `p01.01`.
        let multiprocess = stop.windows(8).any(|w| w == b"thread:p");
        // The target description: target.xml, then each file it includes,
        // in document order (QEMU's target.xml holds only includes).
        let target = fetch_xml(&mut conn, address, "target.xml")?;
        let mut docs = vec![target.clone()];
        for inc in target.split("<xi:include href=\"").skip(1) {
            if let Some(end) = inc.find('"') {
                docs.push(fetch_xml(&mut conn, address, &inc[..end])?);
            }
        }
        let layout: Vec<(String, usize, usize)> = parse_registers(&docs)
            .into_iter()
            .map(|r| (r.name, r.offset, r.size))
            .collect();

        // Every vCPU's registers.
        let mut threads = Vec::new();
        let mut reply = conn.send(address, b"qfThreadInfo")?;
        while reply.first() == Some(&b'm') {
            for id in reply[1..].split(|&b| b == b',') {
                threads.push(String::from_utf8_lossy(id).into_owned());
            }
            if threads.len() > MAX_THREADS {
                return Err(proto(address, "the thread list does not end"));
            }
            reply = conn.send(address, b"qsThreadInfo")?;
        }
        let mut cpus = Vec::new();
        let mut registers = Vec::new();
        for tid in &threads {
            conn.send(address, format!("Hg{tid}").as_bytes())?;
            let g = conn.send(address, b"g")?;
            let bytes = from_hex(&g).ok_or_else(|| proto(address, "bad g reply"))?;
            let get = |name: &str| named_register(&layout, &bytes, name);
            cpus.push(QemuCpuState {
                rip: get("rip").unwrap_or(0),
                rsp: get("rsp").unwrap_or(0),
                cr3: get("cr3").ok_or_else(|| {
                    proto(address, "the target description has no cr3 (QEMU too old?)")
                })?,
                cr4: get("cr4").unwrap_or(0),
                idt_base: 0,
                gs_base: get("gs_base").unwrap_or(0),
            });
            registers.push(Registers::from_named(get));
        }
        let phys = conn.send(address, b"Qqemu.PhyMemMode:1")?;
        if phys != b"OK" {
            return Err(proto(
                address,
                "no physical memory mode (Qqemu.PhyMemMode): is this QEMU?",
            ));
        }
        Ok(QemuGdb {
            conn: Mutex::new(conn),
            multiprocess,
            address: address.to_owned(),
            cpus,
            registers,
            packets: Default::default(),
            vcpu_ids: threads,
            layout,
        })
    }

    /// Send one request and return its reply (for `kpeek serve --qemu`,
    /// which relays GDB's packets). The guest must be stopped.
    pub fn request(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.send(&self.address, payload)
    }

    /// Send a packet that resumes the guest (`c`, `s`, `vCont;...`): only
    /// its ack is awaited; the stop reply comes later ([`QemuGdb::wait_stop`]).
    /// Pages read before are forgotten: the guest is about to change them.
    pub fn resume(&self, payload: &[u8]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.cache.clear();
        let sum = payload.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        let mut packet = vec![b'$'];
        packet.extend_from_slice(payload);
        packet.extend_from_slice(format!("#{sum:02x}").as_bytes());
        conn.stream
            .write_all(&packet)
            .map_err(|e| proto(&self.address, format!("send: {e}")))?;
        match conn.byte(&self.address)? {
            b'+' => Ok(()),
            other => Err(proto(
                &self.address,
                format!("expected an ack to a resume, got {:?}", other as char),
            )),
        }
    }

    /// Ask the running guest to stop (the interrupt byte, as GDB's Ctrl-C).
    pub fn interrupt(&self) -> Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.stream
            .write_all(&[0x03])
            .map_err(|e| proto(&self.address, format!("send: {e}")))
    }

    /// The stop reply of a resumed guest, if one comes within `wait`
    /// (`T05thread:01;`, `S02`, `W00`...); `None` while it runs on.
    pub fn wait_stop(&self, wait: Duration) -> Result<Option<Vec<u8>>> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.buf.is_empty() {
            let timeout = conn.stream.read_timeout().ok().flatten();
            conn.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                .map_err(|e| proto(&self.address, e))?;
            let Conn { stream, chunk, .. } = &mut *conn;
            let got = stream.read(chunk);
            conn.stream
                .set_read_timeout(timeout)
                .map_err(|e| proto(&self.address, e))?;
            match got {
                Ok(0) => return Err(proto(&self.address, "the connection was closed")),
                Ok(n) => {
                    let Conn { buf, chunk, .. } = &mut *conn;
                    buf.extend(&chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(proto(&self.address, format!("receive: {e}"))),
            }
        }
        conn.cache.clear();
        conn.receive(&self.address).map(Some)
    }

    /// Forget the pages read so far (the guest ran).
    pub fn forget_pages(&self) {
        self.conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cache
            .clear();
    }

    /// Notes for [`crate::kernel::Program::from_memory`]: the vCPUs' state.
    pub fn notes(&self) -> Notes {
        Notes {
            vmcoreinfo: None,
            // Numbered like QEMU's dump notes: pr_pid = CPU + 1.
            prstatus: self
                .registers
                .iter()
                .enumerate()
                .map(|(i, regs)| PrStatus {
                    pid: i as i32 + 1,
                    regs: *regs,
                })
                .collect(),
            qemu_cpus: self.cpus.clone(),
        }
    }

    /// Run a QEMU monitor (HMP) command through the stub (`qRcmd`, GDB's
    /// `monitor CMD`) and return what it printed.
    pub fn monitor(&self, command: &str) -> Result<String> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let hex: String = command.bytes().map(|b| format!("{b:02x}")).collect();
        conn.keep_output = true;
        let mut text = Vec::new();
        let mut reply = conn.send(&self.address, format!("qRcmd,{hex}").as_bytes());
        let result = loop {
            match reply {
                Ok(r) if r.first() == Some(&b'O') && r != b"OK" => {
                    match from_hex(&r[1..]) {
                        Some(bytes) if text.len() < MAX_PACKET => text.extend(bytes),
                        Some(_) => break Err(proto(&self.address, "monitor output too long")),
                        None => break Err(proto(&self.address, "bad monitor output")),
                    }
                    reply = conn.receive(&self.address);
                }
                Ok(r) if r == b"OK" => break Ok(String::from_utf8_lossy(&text).into_owned()),
                Ok(r) => {
                    break Err(proto(
                        &self.address,
                        format!("monitor {command:?}: {}", String::from_utf8_lossy(&r)),
                    ))
                }
                Err(e) => break Err(e),
            }
        };
        conn.keep_output = false;
        result
    }

    /// This end and QEMU's end of the connection.
    pub fn socket_addrs(&self) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        Some((
            conn.stream.local_addr().ok()?,
            conn.stream.peer_addr().ok()?,
        ))
    }

    fn read_page(&self, conn: &mut Conn, page: u64) -> Result<Box<[u8]>> {
        if let Some(p) = conn.cache.get(&page) {
            return Ok(p.clone());
        }
        let mut data = Vec::with_capacity(4096);
        for half in 0..4096 / MAX_READ {
            let addr = page + (half * MAX_READ) as u64;
            self.packets
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let reply = conn.send(&self.address, format!("m{addr:x},{MAX_READ:x}").as_bytes())?;
            if reply.first() == Some(&b'E') {
                return Err(Error::fault(
                    "physical",
                    addr,
                    MAX_READ,
                    "QEMU cannot read it",
                ));
            }
            data.extend(from_hex(&reply).ok_or_else(|| proto(&self.address, "bad m reply"))?);
        }
        if data.len() != 4096 {
            return Err(Error::fault("physical", page, 4096, "short read from QEMU"));
        }
        let data = data.into_boxed_slice();
        if conn.cache.len() >= CACHE_PAGES {
            conn.cache.clear();
        }
        conn.cache.insert(page, data.clone());
        Ok(data)
    }
}

impl MemorySource for QemuGdb {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        // Small reads (page-table entries, single fields) go through the page
        // cache: the next entry of the same table is then free. Larger ones
        // (a task's span) are read exactly, one packet per 2 KiB, unless
        // the cache already holds them.
        let cached = |c: &Conn| {
            let last = addr.0 + buf.len() as u64 - 1;
            (addr.0 >> 12..=last >> 12).all(|p| c.cache.contains_key(&(p << 12)))
        };
        if buf.len() > 16 && !cached(&conn) {
            for (i, chunk) in buf.chunks_mut(MAX_READ).enumerate() {
                let at = addr.0 + (i * MAX_READ) as u64;
                self.packets
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reply = conn.send(
                    &self.address,
                    format!("m{at:x},{:x}", chunk.len()).as_bytes(),
                )?;
                if reply.first() == Some(&b'E') {
                    return Err(Error::fault(
                        "physical",
                        at,
                        chunk.len(),
                        "QEMU cannot read it",
                    ));
                }
                let data = from_hex(&reply).ok_or_else(|| proto(&self.address, "bad m reply"))?;
                if data.len() != chunk.len() {
                    return Err(Error::fault(
                        "physical",
                        at,
                        chunk.len(),
                        "short read from QEMU",
                    ));
                }
                chunk.copy_from_slice(&data);
            }
            return Ok(());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.0 + done as u64;
            let page = self.read_page(&mut conn, at & !0xfff)?;
            let off = (at & 0xfff) as usize;
            let n = (4096 - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

impl QemuGdb {
    /// Let go of the guest: virtual memory mode again, and detach, which
    /// lets it run (QEMU keeps a guest stopped when its debugger merely
    /// disconnects). Once; later calls do nothing.
    pub fn detach(&self) {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.detached {
            return;
        }
        conn.detached = true;
        let _ = conn.send(&self.address, b"Qqemu.PhyMemMode:0");
        let detach: &[u8] = if self.multiprocess { b"D;1" } else { b"D" };
        if conn.send(&self.address, detach).ok().as_deref() != Some(b"OK") {
            eprintln!("kpeek: warning: QEMU at {} did not accept the detach; the guest may still be stopped", self.address);
        }
    }
}

impl Drop for QemuGdb {
    fn drop(&mut self) {
        self.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_run_lengths() {
        assert_eq!(unescape(b"a}\x03b"), b"a#b");
        // "0* " is '0' repeated 1 + (' ' - 29) = 4 times.
        assert_eq!(unescape(b"0* "), b"0000");
        assert_eq!(from_hex(b"4c69"), Some(b"Li".to_vec()));
        assert_eq!(from_hex(b"4c6"), None);
    }

    #[test]
    fn registers_come_in_document_order() {
        let docs = vec![
            "<feature><reg name=\"rax\" bitsize=\"64\"/><!-- <reg name=\"ss_base\" bitsize=\"64\"/> --><reg name=\"eflags\" bitsize=\"32\" type=\"x\"/></feature>".to_owned(),
            "<feature><reg name=\"cr3\" bitsize=\"64\"/></feature>".to_owned(),
        ];
        let regs = parse_registers(&docs);
        assert_eq!(
            regs.iter()
                .map(|r| (r.name.as_str(), r.offset, r.size))
                .collect::<Vec<_>>(),
            [("rax", 0, 8), ("eflags", 8, 4), ("cr3", 12, 8)]
        );
    }

    /// A stub that streams a packet without end is an error, not a hang
    /// with memory growing.
    #[test]
    fn an_endless_packet_is_an_error() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let stub = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let _ = s.write_all(b"+$");
            let chunk = [b'a'; 65536];
            while s.write_all(&chunk).is_ok() {}
        });
        let err = QemuGdb::connect(&address, Duration::from_secs(10))
            .err()
            .expect("an error");
        assert!(err.to_string().contains("longer than"), "{err}");
        stub.join().expect("stub");
    }

    /// Register sizes no CPU has end the description: their offsets added
    /// up past `usize::MAX` (a panic in debug builds).
    #[test]
    fn absurd_register_sizes_end_the_description() {
        let huge = usize::MAX.to_string();
        let docs = vec![format!(
            "<reg name=\"rax\" bitsize=\"64\"/><reg name=\"a\" bitsize=\"{huge}\"/><reg name=\"b\" bitsize=\"{huge}\"/>"
        )];
        let regs = parse_registers(&docs);
        assert_eq!(
            regs.iter()
                .map(|r| (r.name.as_str(), r.offset, r.size))
                .collect::<Vec<_>>(),
            [("rax", 0, 8)]
        );
    }
}
