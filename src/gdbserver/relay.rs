//! `kpeek serve --qemu`: a GDB server in front of QEMU's gdbstub that shows
//! every task of the live guest as a thread.
//!
//! kpeek holds the one connection QEMU's gdbstub takes and speaks the
//! remote protocol with GDB itself. What only the guest can do passes
//! through to QEMU: `continue`/`step` (`c`, `s`, `vCont`), Ctrl-C (the
//! interrupt byte), breakpoints and watchpoints (`Z`/`z`), the target
//! description. What is about threads kpeek answers from the kernel's
//! memory, as `kpeek serve` does for a dump: the thread list (CPUs, then
//! every task; ids as in [`super::threads`]), `info threads` labels, and
//! the registers of a sleeping task (its switch frame, in the layout of
//! QEMU's `g` reply). A task running on a vCPU, and the vCPU itself, have
//! QEMU's own registers. The list is gathered again after every stop.
//!
//! Memory reads go through kpeek's own page walk over QEMU's physical
//! memory, so any thread reads the kernel; writes (memory and registers)
//! are refused unless `--allow-writes`. When GDB leaves (detach, kill, a
//! dropped connection) the guest runs on and the next GDB is served.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::arch::Registers;
use crate::kernel::Program;
use crate::live::qemu::{from_hex, named_register, unescape, QemuGdb};
use crate::live::qemu_host::QemuLive;
use crate::{Error, Result};

use super::serve::PACKET_BUFFER;
use super::threads::{Snapshot, ThreadKind};

/// Thread ids per `qfThreadInfo`/`qsThreadInfo` reply.
const IDS_PER_REPLY: usize = 200;
/// Addresses from here up are the kernel's; below, user space.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// How long a stop may take after an interrupt before kpeek gives up on it.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What happened, for the caller to log.
#[derive(Debug)]
pub enum RelayEvent<'a> {
    /// A GDB connected (its address).
    Connected(&'a str),
    /// Its session ended, and how.
    Ended(&'a str, &'a str),
    /// The guest stopped; the thread list now has this many threads.
    Stopped(usize),
    /// Something the user should know (the guest rebooted, ...).
    Warning(&'a str),
}

/// The server: the QEMU connection, the kernel, and whether writes pass.
pub struct Relay {
    /// QEMU: its gdbstub for control, its memory (the process's, or
    /// through the gdbstub) for kpeek's reads.
    live: Arc<QemuLive>,
    prog: Program,
    allow_writes: bool,
    /// The guest runs (a resume was sent, no stop reply seen yet).
    running: bool,
    /// QEMU's last stop reply (the vCPU it names, as an index).
    stop_cpu: usize,
    stop_reply: Vec<u8>,
}

/// One thread as GDB sees it, gathered at a stop.
struct Entry {
    tid: usize,
    label: String,
    regs: Regs,
}

enum Regs {
    /// QEMU's registers of this vCPU (the vCPU, or the task running on it).
    Vcpu(usize),
    /// A sleeping task's switch frame.
    Saved(Box<Option<Registers>>),
}

/// The threads at one stop.
struct Table {
    entries: Vec<Entry>,
    /// The task running on each vCPU (its tid), where known.
    on_cpu: Vec<Option<usize>>,
    /// Each vCPU's `g` reply (raw bytes), read once per stop: GDB asks
    /// for the registers of every thread, and a sleeping task's are
    /// written over vCPU 0's.
    vcpu_regs: Vec<std::cell::OnceCell<Vec<u8>>>,
}

impl Table {
    fn new(entries: Vec<Entry>, on_cpu: Vec<Option<usize>>) -> Table {
        let vcpu_regs = on_cpu.iter().map(|_| std::cell::OnceCell::new()).collect();
        Table {
            entries,
            on_cpu,
            vcpu_regs,
        }
    }
}

impl Relay {
    /// A relay over `live`, whose memory `prog` reads.
    pub fn new(live: Arc<QemuLive>, prog: Program, allow_writes: bool) -> Relay {
        Relay {
            live,
            prog,
            allow_writes,
            running: false,
            stop_cpu: 0,
            stop_reply: b"T05".to_vec(),
        }
    }

    /// QEMU's gdbstub.
    fn qemu(&self) -> &QemuGdb {
        self.live.gdb()
    }

    /// The kernel it serves.
    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// Serve GDB clients one after another until QEMU goes away.
    pub fn serve(&mut self, listener: &TcpListener, events: &dyn Fn(RelayEvent<'_>)) -> Result<()> {
        for conn in listener.incoming() {
            let stream = match conn {
                Ok(s) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            events(RelayEvent::Connected(&peer));
            let end = self.session(stream, events);
            // Whatever ended it, the guest runs on while nobody debugs it.
            let resumed = self.let_run();
            match (&end, &resumed) {
                (Ok(how), Ok(())) => events(RelayEvent::Ended(&peer, how)),
                (Err(e), _) | (Ok(_), Err(e)) => {
                    events(RelayEvent::Ended(&peer, &e.to_string()));
                }
            }
            // QEMU is gone: nothing more to serve.
            resumed?;
            // An error from QEMU's side (not GDB's) ends the server: its
            // connection is in an unknown state, or gone.
            if let Err(Error::Live(what)) = &end {
                if what.starts_with("QEMU gdbstub at") {
                    return end.map(|_| ());
                }
            }
        }
        Ok(())
    }

    /// Let the guest run (after a session): resume it unless it runs.
    fn let_run(&mut self) -> Result<()> {
        if !self.running {
            self.qemu().resume(b"c")?;
            self.running = true;
        }
        Ok(())
    }

    /// Stop the guest (before a session, or when kpeek leaves).
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        self.qemu().interrupt()?;
        let deadline = Instant::now() + STOP_WAIT;
        while Instant::now() < deadline {
            if let Some(reply) = self.qemu().wait_stop(Duration::from_millis(200))? {
                self.stopped(&reply);
                return Ok(());
            }
        }
        Err(Error::Live(format!(
            "QEMU gdbstub at {} did not stop within {} s of an interrupt",
            self.qemu().address,
            STOP_WAIT.as_secs()
        )))
    }

    fn stopped(&mut self, reply: &[u8]) {
        self.running = false;
        self.stop_cpu = stop_thread(reply)
            .and_then(|id| self.qemu().vcpu_ids.iter().position(|v| v.as_bytes() == id))
            .unwrap_or(0);
        self.stop_reply = reply.to_vec();
    }

    fn session(&mut self, stream: TcpStream, events: &dyn Fn(RelayEvent<'_>)) -> Result<String> {
        self.stop()?;
        let mut gdb = Client::new(stream).map_err(|e| Error::Live(format!("GDB: {e}")))?;
        let mut table: Option<Table> = None;
        let (mut sel_g, mut sel_c) = (0usize, 0usize);
        let mut listed = 0usize;
        loop {
            if self.running {
                // Wait for the guest to stop, or for GDB to interrupt it.
                if let Some(reply) = self.qemu().wait_stop(Duration::from_millis(50))? {
                    self.stopped(&reply);
                    let t = self.gather(events);
                    sel_g = self.stop_tid(&t);
                    sel_c = sel_g;
                    gdb.send(&self.stop_packet(&t))?;
                    table = Some(t);
                    continue;
                }
                match gdb.poll()? {
                    Some(Incoming::Interrupt) => self.qemu().interrupt()?,
                    Some(Incoming::Packet(_)) | None => {} // all-stop: GDB waits
                    Some(Incoming::Closed) => {
                        return Ok("GDB disconnected while the guest ran".into())
                    }
                }
                continue;
            }
            let packet = match gdb.next()? {
                Incoming::Packet(p) => p,
                Incoming::Interrupt => continue, // already stopped
                Incoming::Closed => return Ok("GDB disconnected".into()),
            };
            let t = match &table {
                Some(t) => t,
                None => {
                    let t = self.gather(events);
                    sel_g = self.stop_tid(&t);
                    sel_c = sel_g;
                    table.insert(t)
                }
            };
            let reply: Option<Vec<u8>> = match packet.as_slice() {
                p if p.starts_with(b"qSupported") => Some(
                    format!(
                        "PacketSize={PACKET_BUFFER:x};qXfer:features:read+;QStartNoAckMode+;vContSupported+"
                    )
                    .into_bytes(),
                ),
                b"QStartNoAckMode" => {
                    gdb.send(b"OK")?;
                    gdb.no_ack = true;
                    None
                }
                p if p.starts_with(b"qXfer:features:read:") => Some(self.qemu().request(p)?),
                b"?" => Some(self.stop_packet(t)),
                b"qC" => Some(format!("QC{:x}", self.stop_tid(t)).into_bytes()),
                b"qAttached" => Some(b"1".to_vec()),
                b"qOffsets" => Some(self.offsets()),
                b"qfThreadInfo" => {
                    listed = 0;
                    Some(thread_ids(t, &mut listed))
                }
                b"qsThreadInfo" => Some(thread_ids(t, &mut listed)),
                p if p.starts_with(b"qThreadExtraInfo,") => {
                    let tid = parse_hex(&p[17..]).unwrap_or(0) as usize;
                    Some(match t.entries.iter().find(|e| e.tid == tid) {
                        Some(e) => hex(e.label.as_bytes()).into_bytes(),
                        None => b"E01".to_vec(),
                    })
                }
                p if p.starts_with(b"qRcmd,") => Some(self.monitor(&p[6..], &mut gdb)?),
                p if p.first() == Some(&b'H') && p.len() >= 2 => {
                    let tid = match &p[2..] {
                        b"-1" | b"0" => self.stop_tid(t),
                        id => parse_hex(id).unwrap_or(0) as usize,
                    };
                    if p[1] == b'c' {
                        sel_c = tid;
                    } else {
                        sel_g = tid;
                    }
                    Some(b"OK".to_vec())
                }
                p if p.first() == Some(&b'T') => {
                    let tid = parse_hex(&p[1..]).unwrap_or(0) as usize;
                    Some(if t.entries.iter().any(|e| e.tid == tid) {
                        b"OK".to_vec()
                    } else {
                        b"E01".to_vec()
                    })
                }
                b"g" => Some(self.registers(t, sel_g)?.map_or(b"E01".to_vec(), |r| r.into_bytes())),
                p if p.first() == Some(&b'p') => Some(self.register(t, sel_g, &p[1..])?),
                p if matches!(p.first(), Some(b'G' | b'P')) => {
                    Some(match vcpu_of(t, sel_g).filter(|_| self.allow_writes) {
                        Some(cpu) => {
                            self.select(cpu)?;
                            self.qemu().request(p)?
                        }
                        None => b"E01".to_vec(),
                    })
                }
                p if p.first() == Some(&b'm') => Some(self.read_memory(t, sel_g, &p[1..])),
                p if p.first() == Some(&b'M') => Some(self.write_memory(&p[1..])?),
                p if matches!(p.first(), Some(b'Z' | b'z')) => Some(self.qemu().request(p)?),
                b"vCont?" => Some(b"vCont;c;C;s;S".to_vec()),
                p if p.starts_with(b"vCont;") => match self.translate_vcont(t, &p[6..]) {
                    Ok(q) => {
                        self.qemu().resume(&q)?;
                        self.running = true;
                        None
                    }
                    Err(why) => {
                        events(RelayEvent::Warning(&why));
                        Some(b"E01".to_vec())
                    }
                },
                p if matches!(p.first(), Some(b'c' | b'C' | b's' | b'S')) => {
                    // The legacy resume: the thread GDB chose with Hc.
                    if let Some(cpu) = vcpu_of(t, sel_c) {
                        let id = &self.qemu().vcpu_ids[cpu];
                        self.qemu().request(format!("Hc{id}").as_bytes())?;
                    }
                    self.qemu().resume(p)?;
                    self.running = true;
                    None
                }
                p if p.first() == Some(&b'D') => {
                    gdb.send(b"OK")?;
                    return Ok("GDB detached".into());
                }
                b"k" | b"vKill" => return Ok("GDB killed the session (the guest runs on)".into()),
                _ => Some(Vec::new()),
            };
            if self.running || matches!(packet.first(), Some(b'G' | b'P' | b'M')) {
                table = None;
            }
            if let Some(reply) = reply {
                gdb.send(&reply)?;
            }
        }
    }

    /// The thread table at this stop: CPUs, then the tasks (from the
    /// kernel's memory); only the vCPUs when the task list is unreadable.
    fn gather(&self, events: &dyn Fn(RelayEvent<'_>)) -> Table {
        self.qemu().forget_pages();
        let vcpus = self.qemu().vcpu_ids.len();
        let mut on_cpu = vec![None; vcpus];
        // The kernel is still the one kpeek found (a reboot moves it).
        let same_kernel = self
            .prog
            .symbol("linux_banner")
            .and_then(|at| self.prog.read_vec(at, self.prog.banner.len()))
            .is_ok_and(|b| b == self.prog.banner.as_bytes());
        let vcpus_only = || {
            (0..vcpus)
                .map(|c| Entry {
                    tid: super::threads::CPU_TID_BASE + c,
                    label: format!("CPU {c}"),
                    regs: Regs::Vcpu(c),
                })
                .collect()
        };
        if !same_kernel {
            events(RelayEvent::Warning(
                "the kernel's banner is no longer where it was (did the guest reboot?): \
                 only the vCPUs are threads; restart kpeek serve --qemu",
            ));
            return Table::new(vcpus_only(), on_cpu);
        }
        let snap = match Snapshot::gather(&self.prog) {
            Ok(snap) => snap,
            Err(e) => {
                events(RelayEvent::Warning(&format!(
                    "the task list cannot be read ({e}): only the vCPUs are threads"
                )));
                return Table::new(vcpus_only(), on_cpu);
            }
        };
        let entries: Vec<Entry> = snap
            .threads
            .iter()
            .map(|th| {
                let regs = match th.kind {
                    ThreadKind::Cpu(c) => Regs::Vcpu(c as usize),
                    ThreadKind::Task(i) => {
                        let task = &snap.tasks.tasks[i];
                        match task.cpu.filter(|&c| task.current && (c as usize) < vcpus) {
                            Some(c) => {
                                let c = c as usize;
                                on_cpu[c] = Some(th.tid.get());
                                Regs::Vcpu(c)
                            }
                            _ => Regs::Saved(Box::new(th.registers)),
                        }
                    }
                };
                Entry {
                    tid: th.tid.get(),
                    label: th.label.clone(),
                    regs,
                }
            })
            .collect();
        events(RelayEvent::Stopped(entries.len()));
        Table::new(entries, on_cpu)
    }

    /// The thread to name at this stop: the task running on the vCPU that
    /// stopped, else that vCPU.
    fn stop_tid(&self, t: &Table) -> usize {
        t.on_cpu
            .get(self.stop_cpu)
            .copied()
            .flatten()
            .unwrap_or(super::threads::CPU_TID_BASE + self.stop_cpu)
    }

    /// QEMU's stop reply with kpeek's thread id in it.
    fn stop_packet(&self, t: &Table) -> Vec<u8> {
        stop_packet(&self.stop_reply, self.stop_tid(t))
    }

    /// `qOffsets`: as for a dump (see [`super::section_offsets`]).
    fn offsets(&self) -> Vec<u8> {
        let off = self.prog.located.layout.kaslr_offset;
        let segments =
            super::section_offsets::load_segments(self.prog.debug.path()).or_else(|| {
                let at = |name: &str| self.prog.debug.symbol(name).map(|s| s.addr.get());
                Some((at("_text")?, at("_sdata")?))
            });
        match segments {
            Some((text, data)) => format!(
                "TextSeg={:x};DataSeg={:x}",
                text.wrapping_add(off),
                data.wrapping_add(off)
            ),
            None => format!("Text={off:x};Data={off:x};Bss={off:x}"),
        }
        .into_bytes()
    }

    /// `monitor CMD`: kpeek's commands over a fresh snapshot, as `O` packets.
    fn monitor(&self, hex_cmd: &[u8], gdb: &mut Client) -> Result<Vec<u8>> {
        let cmd = from_hex(hex_cmd).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        let text = match Snapshot::gather(&self.prog) {
            Ok(snap) => super::monitor::answer(&snap, &cmd, "in front of QEMU's gdbstub"),
            Err(e) => format!("kpeek: {e}\n").into_bytes(),
        };
        for chunk in text.chunks(1024) {
            let mut packet = b"O".to_vec();
            packet.extend(hex(chunk).bytes());
            gdb.send(&packet)?;
        }
        Ok(b"OK".to_vec())
    }

    /// Make `cpu` QEMU's thread for register access.
    fn select(&self, cpu: usize) -> Result<()> {
        let id = &self.qemu().vcpu_ids[cpu];
        self.qemu().request(format!("Hg{id}").as_bytes()).map(drop)
    }

    /// A thread's registers in QEMU's `g` layout (hex), or `None` for an
    /// unknown thread.
    fn registers(&self, t: &Table, tid: usize) -> Result<Option<String>> {
        let Some(entry) = t.entries.iter().find(|e| e.tid == tid) else {
            return Ok(None);
        };
        match &entry.regs {
            Regs::Vcpu(c) => Ok(Some(hex(self.vcpu_registers(t, *c)?))),
            Regs::Saved(saved) => {
                // QEMU's layout, from vCPU 0's registers, with the task's.
                let mut bytes = self.vcpu_registers(t, 0)?.to_vec();
                let regs = saved.unwrap_or_default();
                for (name, offset, size) in &self.qemu().layout {
                    let value = match name.as_str() {
                        "rax" => regs.rax,
                        "rbx" => regs.rbx,
                        "rcx" => regs.rcx,
                        "rdx" => regs.rdx,
                        "rsi" => regs.rsi,
                        "rdi" => regs.rdi,
                        "rbp" => regs.rbp,
                        "rsp" => regs.rsp,
                        "r8" => regs.r8,
                        "r9" => regs.r9,
                        "r10" => regs.r10,
                        "r11" => regs.r11,
                        "r12" => regs.r12,
                        "r13" => regs.r13,
                        "r14" => regs.r14,
                        "r15" => regs.r15,
                        "rip" => regs.rip,
                        "eflags" => regs.eflags,
                        "cs" => regs.cs,
                        "ss" => regs.ss,
                        "ds" => regs.ds,
                        "es" => regs.es,
                        "fs" => regs.fs,
                        "gs" => regs.gs,
                        _ => continue,
                    };
                    if let Some(slot) = bytes.get_mut(*offset..offset + size) {
                        let v = value.to_le_bytes();
                        let n = slot.len().min(8);
                        slot[..n].copy_from_slice(&v[..n]);
                    }
                }
                Ok(Some(hex(&bytes)))
            }
        }
    }

    /// A vCPU's registers at this stop (QEMU's `g`, read once).
    fn vcpu_registers<'t>(&self, t: &'t Table, cpu: usize) -> Result<&'t [u8]> {
        let cell = t
            .vcpu_regs
            .get(cpu)
            .ok_or_else(|| Error::Live(format!("no vCPU {cpu}")))?;
        if let Some(regs) = cell.get() {
            return Ok(regs);
        }
        self.select(cpu)?;
        let g = self.qemu().request(b"g")?;
        let regs = from_hex(&g).ok_or_else(|| {
            Error::Live(format!(
                "QEMU gdbstub at {}: bad g reply",
                self.qemu().address
            ))
        })?;
        Ok(cell.get_or_init(|| regs))
    }

    /// `p N`: one register, cut from the `g` reply by the description.
    fn register(&self, t: &Table, tid: usize, n: &[u8]) -> Result<Vec<u8>> {
        let Some(n) = parse_hex(n) else {
            return Ok(b"E01".to_vec());
        };
        let Some(all) = self.registers(t, tid)? else {
            return Ok(b"E01".to_vec());
        };
        Ok(match self.qemu().layout.get(n as usize) {
            Some((_, offset, size)) => all
                .get(offset * 2..(offset + size) * 2)
                .map_or(b"E01".to_vec(), |s| s.as_bytes().to_vec()),
            None => b"E01".to_vec(),
        })
    }

    /// `m ADDR,LEN`: kernel memory through kpeek's page walk; user memory
    /// through the page tables of the vCPU the thread runs on (a sleeping
    /// task's user memory is not read).
    fn read_memory(&self, t: &Table, tid: usize, args: &[u8]) -> Vec<u8> {
        let Some((addr, len)) = addr_len(args) else {
            return b"E01".to_vec();
        };
        let mut data = vec![0u8; len.min(PACKET_BUFFER / 2)];
        let n = if addr >= KERNEL_HALF {
            super::read_up_to_fault(&self.prog, addr, &mut data)
        } else {
            self.read_user(t, tid, addr, &mut data)
        };
        match n {
            0 => b"E14".to_vec(),
            n => hex(&data[..n]).into_bytes(),
        }
    }

    /// User memory of the vCPU `tid` runs on, through its CR3 (the user
    /// page table under PTI), page by page up to the first fault.
    fn read_user(&self, t: &Table, tid: usize, addr: u64, data: &mut [u8]) -> usize {
        let Some(cpu) = vcpu_of(t, tid) else { return 0 };
        let Ok(regs) = self.vcpu_registers(t, cpu) else {
            return 0;
        };
        let get = |name: &str| named_register(&self.qemu().layout, regs, name);
        let state = crate::arch::QemuCpuState {
            cr3: get("cr3").unwrap_or(0),
            cr4: get("cr4").unwrap_or(0),
            ..Default::default()
        };
        let Some((pgd, levels)) = crate::arch::paging::page_table_roots(&state).next() else {
            return 0;
        };
        let sme = self.prog.located.layout.sme_mask;
        let mut done = 0usize;
        while done < data.len() {
            let at = addr.wrapping_add(done as u64);
            let n = (data.len() - done).min((0x1000 - (at & 0xfff)) as usize);
            let read = crate::arch::paging::page_walk(&*self.prog.memory, pgd, levels, sme, at)
                .and_then(|pa| self.prog.memory.read_phys(pa, &mut data[done..done + n]));
            if read.is_err() {
                break;
            }
            done += n;
        }
        done
    }

    /// `M ADDR,LEN:BYTES`: refused unless `--allow-writes`; then written
    /// to the physical pages kpeek's page walk finds.
    fn write_memory(&self, args: &[u8]) -> Result<Vec<u8>> {
        if !self.allow_writes {
            return Ok(b"E01".to_vec());
        }
        let Some(colon) = args.iter().position(|&b| b == b':') else {
            return Ok(b"E01".to_vec());
        };
        let (Some((addr, _)), Some(data)) =
            (addr_len(&args[..colon]), from_hex(&args[colon + 1..]))
        else {
            return Ok(b"E01".to_vec());
        };
        let mut done = 0usize;
        while done < data.len() {
            let at = addr.wrapping_add(done as u64);
            let n = (data.len() - done).min((0x1000 - (at & 0xfff)) as usize);
            let l = &self.prog.located.layout;
            let walked =
                crate::arch::paging::page_walk(&*self.prog.memory, l.pgd, l.levels, l.sme_mask, at);
            let Ok(phys) = walked else {
                return Ok(b"E14".to_vec());
            };
            let packet = format!("M{:x},{n:x}:{}", phys.0, hex(&data[done..done + n]));
            if self.qemu().request(packet.as_bytes())? != b"OK" {
                return Ok(b"E14".to_vec());
            }
            done += n;
        }
        self.qemu().forget_pages();
        Ok(b"OK".to_vec())
    }

    /// `vCont` actions with kpeek's thread ids turned into QEMU's vCPUs.
    fn translate_vcont(&self, t: &Table, actions: &[u8]) -> std::result::Result<Vec<u8>, String> {
        translate_vcont(t, &self.qemu().vcpu_ids, actions)
    }
}

/// `vCont` actions (after `vCont;`) with kpeek's thread ids turned into
/// QEMU's ids of the vCPUs they run on (`vcpu_ids`, in CPU order).
fn translate_vcont(
    t: &Table,
    vcpu_ids: &[String],
    actions: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let mut out = b"vCont".to_vec();
    for action in actions.split(|&b| b == b';') {
        out.push(b';');
        match action.iter().position(|&b| b == b':') {
            None => out.extend_from_slice(action),
            Some(colon) => {
                let tid = parse_hex(&action[colon + 1..]).unwrap_or(0) as usize;
                let id = vcpu_of(t, tid)
                    .and_then(|c| vcpu_ids.get(c))
                    .ok_or_else(|| {
                        format!(
                            "GDB asked to resume thread {tid:#x}, a task that is not on a CPU: \
                         only CPUs and the tasks running on them can step"
                        )
                    })?;
                out.extend_from_slice(&action[..=colon]);
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
    Ok(out)
}

/// QEMU's stop reply with `tid` as its thread (W/X, the guest gone, as
/// they are).
fn stop_packet(reply: &[u8], tid: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let signal = match text.as_bytes().first() {
        Some(b'T' | b'S') if text.len() >= 3 => &text[1..3],
        Some(b'W' | b'X') => return reply.to_vec(),
        _ => "05",
    };
    let rest: String = text
        .get(3..)
        .unwrap_or("")
        .split(';')
        .filter(|f| !f.is_empty() && !f.starts_with("thread:"))
        .map(|f| format!("{f};"))
        .collect();
    format!("T{signal}thread:{tid:x};{rest}").into_bytes()
}

/// The vCPU behind a thread: a CPU, or a task running on one.
fn vcpu_of(t: &Table, tid: usize) -> Option<usize> {
    match t.entries.iter().find(|e| e.tid == tid)?.regs {
        Regs::Vcpu(c) => Some(c),
        Regs::Saved(_) => None,
    }
}

/// The next `qfThreadInfo`/`qsThreadInfo` reply.
fn thread_ids(t: &Table, listed: &mut usize) -> Vec<u8> {
    let ids: Vec<String> = t
        .entries
        .iter()
        .skip(*listed)
        .take(IDS_PER_REPLY)
        .map(|e| format!("{:x}", e.tid))
        .collect();
    if ids.is_empty() {
        return b"l".to_vec();
    }
    *listed += ids.len();
    format!("m{}", ids.join(",")).into_bytes()
}

/// The `thread:` field of a stop reply.
fn stop_thread(reply: &[u8]) -> Option<&[u8]> {
    let at = reply.windows(7).position(|w| w == b"thread:")? + 7;
    let rest = &reply[at..];
    Some(&rest[..rest.iter().position(|&b| b == b';').unwrap_or(rest.len())])
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

fn addr_len(s: &[u8]) -> Option<(u64, usize)> {
    let comma = s.iter().position(|&b| b == b',')?;
    Some((
        parse_hex(&s[..comma])?,
        parse_hex(&s[comma + 1..])? as usize,
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What GDB sent.
enum Incoming {
    Packet(Vec<u8>),
    /// The interrupt byte (Ctrl-C).
    Interrupt,
    Closed,
}

/// GDB's side of the connection: packets in (checked, acked, bounded to
/// the advertised size), packets out (escaped).
struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    at: usize,
    no_ack: bool,
}

impl Client {
    fn new(stream: TcpStream) -> io::Result<Client> {
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            input: Vec::new(),
            at: 0,
            no_ack: false,
        })
    }

    fn fill(&mut self, block: bool) -> io::Result<bool> {
        if self.at < self.input.len() {
            return Ok(true);
        }
        self.stream.set_nonblocking(!block)?;
        let mut chunk = [0u8; 65536];
        let got = self.stream.read(&mut chunk);
        self.stream.set_nonblocking(false)?;
        match got {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.input.clear();
                self.input.extend_from_slice(&chunk[..n]);
                self.at = 0;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn byte(&mut self) -> io::Result<u8> {
        self.fill(true)?;
        self.at += 1;
        Ok(self.input[self.at - 1])
    }

    /// What GDB sent, if anything is waiting (never blocks for the first byte).
    fn poll(&mut self) -> Result<Option<Incoming>> {
        match self.fill(false) {
            Ok(true) => self.next().map(Some),
            Ok(false) => Ok(None),
            Err(_) => Ok(Some(Incoming::Closed)),
        }
    }

    /// The next packet or interrupt (blocks).
    fn next(&mut self) -> Result<Incoming> {
        let closed = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => Ok(Incoming::Closed),
            _ => Err(Error::Live(format!("GDB: {e}"))),
        };
        loop {
            let b = match self.byte() {
                Ok(b) => b,
                Err(e) => return closed(e),
            };
            match b {
                0x03 => return Ok(Incoming::Interrupt),
                b'$' => {}
                _ => continue, // acks, noise between packets
            }
            let mut body = Vec::new();
            loop {
                let b = match self.byte() {
                    Ok(b) => b,
                    Err(e) => return closed(e),
                };
                if b == b'#' {
                    break;
                }
                if body.len() + 4 > PACKET_BUFFER {
                    return Err(Error::Live(format!(
                        "GDB: a packet longer than the {PACKET_BUFFER} bytes advertised"
                    )));
                }
                body.push(b);
            }
            let sum = match (self.byte(), self.byte()) {
                (Ok(a), Ok(b)) => parse_hex(&[a, b]),
                (Err(e), _) | (_, Err(e)) => return closed(e),
            };
            let ok = sum == Some(u64::from(body.iter().fold(0u8, |a, &b| a.wrapping_add(b))));
            if !self.no_ack {
                self.write(if ok { b"+" } else { b"-" })?;
            }
            if ok {
                return Ok(Incoming::Packet(unescape(&body)));
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .map_err(|e| Error::Live(format!("GDB: {e}")))
    }

    /// Send a packet (escaped); GDB's ack is read with the next packet.
    fn send(&mut self, payload: &[u8]) -> Result<()> {
        let mut body = Vec::with_capacity(payload.len() + 8);
        for &b in payload {
            if matches!(b, b'#' | b'$' | b'}' | b'*') {
                body.push(b'}');
                body.push(b ^ 0x20);
            } else {
                body.push(b);
            }
        }
        let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        let mut packet = Vec::with_capacity(body.len() + 4);
        packet.push(b'$');
        packet.extend_from_slice(&body);
        packet.extend_from_slice(format!("#{sum:02x}").as_bytes());
        self.write(&packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_replies_name_the_thread() {
        assert_eq!(
            stop_thread(b"T05thread:p01.02;swbreak:;"),
            Some(&b"p01.02"[..])
        );
        assert_eq!(stop_thread(b"T02thread:01;"), Some(&b"01"[..]));
        assert_eq!(stop_thread(b"S05"), None);
    }

    fn table_of_a_cpu_a_running_task_and_a_sleeper() -> Table {
        Table::new(
            vec![
                Entry {
                    tid: 0x800000,
                    label: "CPU 0".into(),
                    regs: Regs::Vcpu(0),
                },
                Entry {
                    tid: 0x800001,
                    label: "CPU 1".into(),
                    regs: Regs::Vcpu(1),
                },
                Entry {
                    tid: 52,
                    label: "52 kpw-spin, on CPU 1".into(),
                    regs: Regs::Vcpu(1),
                },
                Entry {
                    tid: 40,
                    label: "40 kpw-alpha".into(),
                    regs: Regs::Saved(Box::new(None)),
                },
            ],
            vec![None, Some(52)],
        )
    }

    #[test]
    fn vcont_threads_become_vcpus_and_sleepers_cannot_step() {
        let t = table_of_a_cpu_a_running_task_and_a_sleeper();
        let ids = ["p01.01".to_owned(), "p01.02".to_owned()];
        assert_eq!(
            translate_vcont(&t, &ids, b"s:34;c").expect("a task on CPU 1"),
            b"vCont;s:p01.02;c"
        );
        assert_eq!(
            translate_vcont(&t, &ids, b"c").expect("no thread"),
            b"vCont;c"
        );
        let why = translate_vcont(&t, &ids, b"s:28;c").expect_err("a sleeping task");
        assert!(why.contains("not on a CPU"), "{why}");
    }

    #[test]
    fn stop_replies_name_kpeeks_thread() {
        assert_eq!(
            stop_packet(b"T05thread:p01.02;swbreak:;", 52),
            b"T05thread:34;swbreak:;"
        );
        assert_eq!(stop_packet(b"S02", 0x800000), b"T02thread:800000;");
        assert_eq!(stop_packet(b"W00", 1), b"W00");
    }

    #[test]
    fn thread_lists_come_in_chunks_then_end() {
        let t = Table::new(
            (1..=450)
                .map(|tid| Entry {
                    tid,
                    label: String::new(),
                    regs: Regs::Saved(Box::new(None)),
                })
                .collect(),
            vec![],
        );
        let mut listed = 0;
        let mut ids = 0;
        loop {
            let reply = thread_ids(&t, &mut listed);
            if reply == b"l" {
                break;
            }
            ids += reply[1..].split(|&b| b == b',').count();
        }
        assert_eq!(ids, 450);
    }
}
