//! A live QEMU guest whose RAM is read straight from the QEMU process when
//! QEMU runs on this host, through the gdbstub otherwise.
//!
//! The gdbstub connection stays: it stops the guest while kpeek reads (so
//! kpeek sees one instant), gives the vCPUs' registers, and lets the guest
//! run again when kpeek lets go. Only the memory reads change path. A
//! gdbstub `m` packet moves at most 2 KiB per round trip; reading
//! `/proc/PID/mem` of QEMU is a system call (drgn's `contrib/qemu_mem.py`
//! does the same over QMP).
//!
//! Finding the guest's RAM in QEMU, all of it asked of QEMU itself:
//!
//! 1. QEMU's process: the gdbstub connection goes to this host (loopback,
//!    or this host's own address), so QEMU holds the other end of it: the
//!    socket in `/proc/net/tcp{,6}` whose local and remote ends are ours
//!    swapped, and the process with that socket among its descriptors.
//! 2. Where guest-physical RAM is: the monitor's `info mtree -f` (flat view
//!    of the `memory` address space), through the gdbstub's `qRcmd`: its
//!    `ram` and `rom` ranges (MMIO, `i/o`, stays with the gdbstub).
//! 3. Where each range is in QEMU: the monitor's `gpa2hva` at the range's
//!    first and last byte (they must be the same distance apart as in the
//!    guest, or the range is left to the gdbstub).
//! 4. Proof: a page of the guest (the first vCPU's page-table root) read
//!    both ways must be equal, or kpeek reads through the gdbstub.
//!
//! `KPEEK_QEMU_MEMORY=gdbstub` forces the gdbstub path (benchmarks, and
//! tests that compare the two).

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use super::qemu::QemuGdb;
use crate::addr::PhysAddr;
use crate::memory::MemorySource;
use crate::notes::Notes;
use crate::{Error, Result};

/// More RAM ranges than any machine's flat view has.
const MAX_RANGES: usize = 4096;

/// Guest-physical RAM mapped in the QEMU process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// First guest-physical address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// QEMU's virtual address of `start`.
    pub host: u64,
}

/// How the guest's memory is read.
#[derive(Debug)]
pub enum MemoryPath {
    /// From the QEMU process (`/proc/PID/mem`).
    Process {
        /// QEMU's process id.
        pid: u32,
        /// The RAM ranges read from it (anything else: the gdbstub).
        ranges: Vec<RamRange>,
    },
    /// Through the gdbstub's `m` packets, and why.
    Gdbstub {
        /// Why not from the process.
        reason: String,
    },
}

/// A live QEMU guest: the gdbstub, and the QEMU process's memory when it
/// can be read.
pub struct QemuLive {
    gdb: QemuGdb,
    mem: Option<File>,
    /// The path the reads take.
    pub path: MemoryPath,
}

impl QemuLive {
    /// Connect to the gdbstub at `address` (which stops the guest), then
    /// find the guest's RAM in the QEMU process if it runs on this host.
    pub fn connect(address: &str, timeout: Duration) -> Result<QemuLive> {
        let gdb = QemuGdb::connect(address, timeout)?;
        let forced = std::env::var("KPEEK_QEMU_MEMORY").ok();
        let found = if forced.as_deref() == Some("gdbstub") {
            Err("KPEEK_QEMU_MEMORY=gdbstub".to_owned())
        } else {
            open_process_ram(&gdb)
        };
        Ok(match found {
            Ok((pid, ranges, file)) => QemuLive {
                gdb,
                mem: Some(file),
                path: MemoryPath::Process { pid, ranges },
            },
            Err(reason) => QemuLive {
                gdb,
                mem: None,
                path: MemoryPath::Gdbstub { reason },
            },
        })
    }

    /// The gdbstub connection.
    pub fn gdb(&self) -> &QemuGdb {
        &self.gdb
    }

    /// Notes for [`crate::kernel::Program::from_memory`]: the vCPUs' state.
    pub fn notes(&self) -> Notes {
        self.gdb.notes()
    }

    /// Whether QEMU was found on this host but its memory could not be
    /// used (worth a note; a remote QEMU is not).
    pub fn fell_back_locally(&self) -> Option<&str> {
        match &self.path {
            MemoryPath::Gdbstub { reason }
                if !reason.starts_with("not on this host") && !reason.starts_with("KPEEK_") =>
            {
                Some(reason)
            }
            _ => None,
        }
    }

    fn range_of(&self, addr: u64) -> Option<&RamRange> {
        match &self.path {
            MemoryPath::Process { ranges, .. } => {
                let i = ranges.partition_point(|r| r.end <= addr);
                ranges.get(i).filter(|r| r.start <= addr)
            }
            MemoryPath::Gdbstub { .. } => None,
        }
    }

    /// The first RAM range that starts after `addr`.
    fn next_start(&self, addr: u64) -> Option<u64> {
        match &self.path {
            MemoryPath::Process { ranges, .. } => {
                let i = ranges.partition_point(|r| r.start <= addr);
                ranges.get(i).map(|r| r.start)
            }
            MemoryPath::Gdbstub { .. } => None,
        }
    }
}

impl MemorySource for QemuLive {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        let Some(mem) = &self.mem else {
            return self.gdb.read_phys(addr, buf);
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.0.wrapping_add(done as u64);
            let rest = buf.len() - done;
            if let Some(r) = self.range_of(at) {
                let n = usize::try_from(r.end - at).map_or(rest, |n| n.min(rest));
                let host = r.host + (at - r.start);
                mem.read_exact_at(&mut buf[done..done + n], host)
                    .map_err(|e| Error::fault("physical", at, n, format!("QEMU's memory: {e}")))?;
                done += n;
            } else {
                // Not RAM (MMIO, or outside the guest): QEMU's own answer.
                let n = self
                    .next_start(at)
                    .and_then(|s| usize::try_from(s - at).ok())
                    .map_or(rest, |n| n.min(rest));
                self.gdb.read_phys(PhysAddr(at), &mut buf[done..done + n])?;
                done += n;
            }
        }
        Ok(())
    }

    fn describe(&self) -> Option<String> {
        Some(match &self.path {
            MemoryPath::Process { pid, ranges } => {
                let bytes: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                format!(
                    "QEMU process {pid}'s memory (/proc/{pid}/mem): {} MiB of guest RAM in {} ranges; registers and the rest through the gdbstub at {}",
                    bytes >> 20,
                    ranges.len(),
                    self.gdb.address
                )
            }
            MemoryPath::Gdbstub { reason } => {
                format!("the gdbstub at {} ({reason})", self.gdb.address)
            }
        })
    }
}

/// QEMU's pid, its RAM ranges and its memory file, or why not.
fn open_process_ram(gdb: &QemuGdb) -> std::result::Result<(u32, Vec<RamRange>, File), String> {
    let (ours, theirs) = gdb
        .socket_addrs()
        .ok_or("the connection has no addresses")?;
    if !(theirs.ip().is_loopback() || theirs.ip() == ours.ip()) {
        return Err(format!("not on this host: {}", theirs.ip()));
    }
    let inode = socket_inode(Path::new("/proc/net"), ours, theirs)?;
    let pid = socket_owner(Path::new("/proc"), inode)?;
    let mtree = gdb
        .monitor("info mtree -f")
        .map_err(|e| format!("QEMU's monitor: {e}"))?;
    let mut ranges = Vec::new();
    for (start, end) in ram_ranges(&mtree) {
        let first = gpa2hva(gdb, start)?;
        let last = gpa2hva(gdb, end - 1)?;
        if let (Some(first), Some(last)) = (first, last) {
            if last.checked_sub(first) == Some(end - 1 - start) {
                ranges.push(RamRange {
                    start,
                    end,
                    host: first,
                });
            }
        }
    }
    let ranges = merge(ranges);
    if ranges.is_empty() {
        return Err("QEMU's monitor showed no RAM".into());
    }
    let file = File::open(format!("/proc/{pid}/mem"))
        .map_err(|e| format!("cannot open /proc/{pid}/mem: {e}"))?;
    // Proof: the first vCPU's page-table root (or the guest's first page)
    // read both ways.
    let probe = gdb
        .cpus
        .first()
        .map_or(0, |c| c.cr3 & 0x000f_ffff_ffff_f000);
    let probe = if ranges
        .iter()
        .any(|r| r.start <= probe && probe + 2048 <= r.end)
    {
        probe
    } else {
        ranges[0].start
    };
    let r = ranges
        .iter()
        .find(|r| r.start <= probe && probe < r.end)
        .ok_or("no RAM to compare")?;
    let n = 2048.min(usize::try_from(r.end - probe).unwrap_or(2048));
    let (mut direct, mut stub) = (vec![0u8; n], vec![0u8; n]);
    file.read_exact_at(&mut direct, r.host + (probe - r.start))
        .map_err(|e| format!("cannot read /proc/{pid}/mem: {e}"))?;
    gdb.read_phys(PhysAddr(probe), &mut stub)
        .map_err(|e| format!("the gdbstub's read of {probe:#x}: {e}"))?;
    if direct != stub {
        return Err(format!(
            "QEMU process {pid}'s memory at {probe:#x} differs from the gdbstub's"
        ));
    }
    Ok((pid, ranges, file))
}

/// `gpa2hva ADDR`: QEMU's address of a guest-physical one, `None` if it
/// is not RAM.
fn gpa2hva(gdb: &QemuGdb, addr: u64) -> std::result::Result<Option<u64>, String> {
    let text = gdb
        .monitor(&format!("gpa2hva {addr:#x}"))
        .map_err(|e| format!("QEMU's monitor: {e}"))?;
    Ok(parse_gpa2hva(&text))
}

/// "Host virtual address for 0x1000 (pc.ram) is 0x7fe6b3e01000".
fn parse_gpa2hva(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("Host virtual address"))?;
    let hex = line.rsplit(" is ").next()?.trim();
    u64::from_str_radix(hex.strip_prefix("0x")?, 16).ok()
}

/// The `ram` and `rom` ranges of the flat view of the `memory` address
/// space in `info mtree -f`, as `[start, end)`, sorted.
fn ram_ranges(mtree: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut in_memory = false;
    let mut in_ranges = false;
    for line in mtree.lines() {
        if line.starts_with("FlatView") {
            in_memory = false;
            in_ranges = false;
            continue;
        }
        let t = line.trim_start();
        if t.starts_with("AS \"memory\"") {
            in_memory = true;
            continue;
        }
        if t.starts_with("Root memory region") {
            in_ranges = in_memory;
            continue;
        }
        if !in_ranges || out.len() >= MAX_RANGES {
            continue;
        }
        // "0000000000100000-000000001fffffff (prio 0, ram): pc.ram @..."
        let Some((span, rest)) = t.split_once(' ') else {
            continue;
        };
        let Some((a, b)) = span.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(last)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let kind = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .and_then(|(inside, _)| inside.rsplit(", ").next());
        if matches!(kind, Some("ram" | "rom")) && last >= start && last < u64::MAX {
            out.push((start, last + 1));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Adjacent ranges that are adjacent in QEMU too become one.
fn merge(mut ranges: Vec<RamRange>) -> Vec<RamRange> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<RamRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start && last.host + (last.end - last.start) == r.host => {
                last.end = r.end;
            }
            // Overlaps would make the lookup ambiguous: keep the first.
            Some(last) if r.start < last.end => {}
            _ => out.push(r),
        }
    }
    out
}

/// An address of `/proc/net/tcp` or `tcp6`: `0100007F:1F90`, or four
/// 32-bit words in host order for IPv6.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes()),
        32 => {
            let mut b = [0u8; 16];
            for (i, w) in b.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                w.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::from(b)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

/// The inode of QEMU's end of our connection: the socket whose local end
/// is our peer and whose remote end is us.
fn socket_inode(
    proc_net: &Path,
    ours: SocketAddr,
    theirs: SocketAddr,
) -> std::result::Result<u64, String> {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (ours, theirs) = (canon(ours), canon(theirs));
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(proc_net.join(table)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(inode)) = (f.get(1), f.get(2), f.get(9)) else {
                continue;
            };
            if parse_proc_addr(local) == Some(theirs) && parse_proc_addr(remote) == Some(ours) {
                if let Ok(inode) = inode.parse::<u64>() {
                    if inode != 0 {
                        return Ok(inode);
                    }
                }
            }
        }
    }
    Err(format!(
        "no socket from {theirs} to {ours} in /proc/net/tcp (QEMU in another network namespace?)"
    ))
}

/// The process with socket `inode` open: processes named like QEMU first.
fn socket_owner(proc: &Path, inode: u64) -> std::result::Result<u32, String> {
    let want = format!("socket:[{inode}]");
    let mut pids: Vec<(bool, u32)> = std::fs::read_dir(proc)
        .map_err(|e| format!("{}: {e}", proc.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .map(|pid| {
            let comm = std::fs::read_to_string(proc.join(pid.to_string()).join("comm"))
                .unwrap_or_default();
            (!comm.contains("qemu"), pid)
        })
        .collect();
    pids.sort_unstable();
    for (_, pid) in pids {
        let Ok(fds) = std::fs::read_dir(proc.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()) {
                return Ok(pid);
            }
        }
    }
    Err(format!(
        "no process of ours holds QEMU's socket {inode} (QEMU run by another user?)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flat_view_of_system_memory_gives_its_ram() {
        let mtree = "\
FlatView #0
 AS \"I/O\", root: io
 Root memory region: io
  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan

FlatView #1
 AS \"memory\", root: system
 AS \"cpu-memory-0\", root: system
 Root memory region: system
  0000000000000000-00000000000c2fff (prio 0, ram): pc.ram
  00000000000c3000-00000000000e7fff (prio 0, rom): pc.ram @00000000000c3000
  0000000000100000-000000001fffffff (prio 0, ram): pc.ram @0000000000100000 KVM
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
  00000000fffc0000-00000000ffffffff (prio 0, romd): pc.bios

FlatView #2
 AS \"cpu-smm-0\", root: memory
 Root memory region: memory
  0000000000000000-00000000000c2fff (prio 0, ram): smram
";
        assert_eq!(
            ram_ranges(mtree),
            [(0, 0xc3000), (0xc3000, 0xe8000), (0x100000, 0x2000_0000)]
        );
        assert!(ram_ranges("garbage\n\u{1b}[31m\n-\n").is_empty());
    }

    #[test]
    fn gpa2hva_replies() {
        assert_eq!(
            parse_gpa2hva("Host virtual address for 0x1000 (pc.ram) is 0x7fe6b3e01000\r\n"),
            Some(0x7fe6_b3e0_1000)
        );
        assert_eq!(
            parse_gpa2hva("Memory at address 0xfec00000 is not RAM\r\n"),
            None
        );
    }

    #[test]
    fn ranges_adjacent_in_both_merge() {
        let r = |start, end, host| RamRange { start, end, host };
        assert_eq!(
            merge(vec![
                r(0x100000, 0x200000, 0x7000_0010_0000),
                r(0, 0xc3000, 0x7000_0000_0000),
                r(0xc3000, 0xe8000, 0x7000_000c_3000),
                r(0xe8000, 0xf0000, 0x6000_0000_0000),
            ]),
            [
                r(0, 0xe8000, 0x7000_0000_0000),
                r(0xe8000, 0xf0000, 0x6000_0000_0000),
                r(0x100000, 0x200000, 0x7000_0010_0000),
            ]
        );
    }

    #[test]
    fn proc_net_tcp_addresses() {
        assert_eq!(
            parse_proc_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        // An IPv4-mapped address in tcp6 is the IPv4 one.
        assert_eq!(
            parse_proc_addr("0000000000000000FFFF00000100007F:0016"),
            Some("127.0.0.1:22".parse().expect("addr"))
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000:0016"),
            Some("[::1]:22".parse().expect("addr"))
        );
        assert_eq!(parse_proc_addr("zz:1"), None);
        assert_eq!(parse_proc_addr("0100007F"), None);
    }

    /// Our own connection over loopback: the other end's socket is found
    /// in /proc/net/tcp and belongs to this process.
    #[test]
    fn the_other_end_of_a_loopback_connection_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (_server, _) = listener.accept().expect("accept");
        let ours = client.local_addr().expect("local");
        let theirs = client.peer_addr().expect("peer");
        let inode = socket_inode(Path::new("/proc/net"), ours, theirs).expect("inode");
        assert_eq!(
            socket_owner(Path::new("/proc"), inode),
            Ok(std::process::id())
        );
        // The listener is not the connection.
        let server_inode = socket_inode(Path::new("/proc/net"), theirs, ours).expect("ours");
        assert_ne!(inode, server_inode);
    }
}
