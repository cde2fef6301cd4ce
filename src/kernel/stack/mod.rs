//! Kernel stack traces: the x86_64 ORC unwinder, run over a dump's memory.
//!
//! The unwinder follows the kernel's own (`arch/x86/kernel/unwind_orc.c`)
//! step for step, so that what it finds is what the kernel itself would
//! have found, and `/proc/PID/stack` can be reproduced exactly
//! ([`Unwinder::proc_stack`]):
//!
//! * A task that is not on a CPU starts from the `struct
//!   inactive_task_frame` at `task->thread.sp` (see [`SwitchFrame`]):
//!   `ip = ret_addr`, `sp = thread.sp + sizeof(frame)`, `bp = frame.bp`.
//!   A task on a CPU starts from that CPU's registers in the dump
//!   (`NT_PRSTATUS`, QEMU's CPU state, or the live gdbstub).
//! * Each step looks up the ORC entry for `ip - 1` (for a return address;
//!   `ip` itself after an interrupt or at the start), computes the caller's
//!   stack pointer (the CFA) from sp or bp (directly, or through memory for
//!   the irq-stack switch), and then reads the return address below it
//!   (`CALL`), or a whole `struct pt_regs` (`REGS`) or IRET frame
//!   (`REGS_PARTIAL`) at it. Those two are interrupt/exception/syscall
//!   entries: the frame after them is marked as such.
//! * Code with no ORC entry (BPF, trampolines) is assumed to use a frame
//!   pointer, as the kernel does; such frames are marked as guesses.
//! * It stops at an `END_OF_STACK` hint (the bottom of a kernel thread), at a
//!   `pt_regs` from user mode (the bottom of a user task's kernel stack), on
//!   an error (no ORC data, unreadable memory, a stack pointer that leaves
//!   the task's stack or does not move up), or after [`MAX_FRAMES`].
//!
//! Not done: return addresses that ftrace's graph tracer or kretprobes
//! replaced (`unwind_recover_ret_addr`) show as the trampoline, and the
//! DWARF CFI / frame-pointer unwinders for kernels built without ORC.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

mod describe;
mod load;
mod orc_detect;

pub use describe::{CodeSymbol, FrameView};
use load::ModuleCode;

use super::program::read_kernel;
use super::program::Program;
use super::task::Task;
use crate::addr::{LinkAddr, VirtAddr};
use crate::arch::orc::{reg, OrcEntry, OrcFormat, OrcTable, OrcType};
use crate::arch::Registers;
use crate::arch::SwitchFrame;
use crate::error::{Error, Result};

/// At most this many frames per stack (drgn's limit too).
pub const MAX_FRAMES: usize = 1024;
/// `/proc/PID/stack` prints at most this many entries (`MAX_STACK_TRACE_DEPTH`).
pub const PROC_STACK_DEPTH: usize = 64;

/// Offsets in `struct pt_regs`, in words.
mod pt {
    pub const R13: u64 = 2;
    pub const BP: u64 = 4;
    pub const R10: u64 = 7;
    pub const AX: u64 = 10;
    pub const DX: u64 = 12;
    pub const DI: u64 = 14;
    pub const IP: u64 = 16;
    pub const CS: u64 = 17;
    pub const SP: u64 = 19;
    /// `offsetof(struct pt_regs, ip)`: where an IRET frame starts.
    pub const IRET_FRAME_OFFSET: u64 = IP * 8;
}

/// How a frame's pc was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// The first frame of a CPU's stack (the pc it was stopped at), or of
    /// a task that never ran (`ret_from_fork`). A switched-out task's first
    /// pc is a return address: a `Call` frame.
    Start,
    /// A return address below the CFA.
    Call,
    /// The pc saved in a full `struct pt_regs` (an interrupt, exception or
    /// system call entry).
    Regs,
    /// The pc saved in an IRET frame (`REGS_PARTIAL`).
    Iret,
    /// A return address found by assuming a frame pointer, for code with
    /// no ORC data.
    Guess,
    /// A return address found through the DWARF CFI (`.debug_frame`) of
    /// code whose ORC data is undefined; the kernel's own unwinder stops
    /// there.
    Cfi,
}

/// One frame of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The frame's pc (a return address for `Call` and `Guess` frames).
    pub pc: VirtAddr,
    /// The stack pointer in this frame.
    pub sp: VirtAddr,
    /// How the pc was found.
    pub kind: FrameKind,
    /// The `struct pt_regs` a `Regs`/`Iret` frame's pc came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs: Option<VirtAddr>,
}

impl Frame {
    /// Whether the pc is a return address (so the call is at `pc - 1`).
    pub fn is_return_address(&self) -> bool {
        matches!(
            self.kind,
            FrameKind::Call | FrameKind::Guess | FrameKind::Cfi
        )
    }
}

/// Why a stack trace ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StackEnd {
    /// The bottom of a kernel thread's stack (an `END_OF_STACK` hint).
    Bottom,
    /// The `pt_regs` of user mode: the task entered the kernel from there.
    User {
        /// The user-space pc.
        pc: VirtAddr,
        /// The user-space stack pointer.
        sp: VirtAddr,
    },
    /// The unwinder could not go on (no ORC data, a stack pointer that left
    /// the stack, a loop): what and where.
    Error {
        /// What went wrong.
        what: String,
    },
    /// Memory the unwinder needed is not in the dump.
    Unreadable {
        /// The address that could not be read.
        addr: VirtAddr,
    },
    /// [`MAX_FRAMES`] frames and still going.
    TooDeep,
    /// There is nothing to unwind: a task running in user mode, or one
    /// whose registers are not known.
    NoStack {
        /// Why.
        what: String,
    },
}

/// Where a stack's first frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum StackStart {
    /// The task's `inactive_task_frame` (it was switched out).
    Switched,
    /// The registers a CPU was stopped with.
    Cpu {
        /// The CPU.
        cpu: u32,
    },
}

/// A stack trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stack {
    /// Where the first frame came from.
    pub start: StackStart,
    /// The frames, innermost first.
    pub frames: Vec<Frame>,
    /// Why it ended.
    pub end: StackEnd,
}

/// Reads through a copy of the task's stack, falling back to the dump.
struct StackMemory<'a> {
    prog: &'a Program,
    base: u64,
    bytes: Vec<u8>,
}

impl StackMemory<'_> {
    fn u64(&self, addr: u64) -> std::result::Result<u64, StackEnd> {
        if let Some(off) = addr.checked_sub(self.base) {
            if let Some(b) = usize::try_from(off)
                .ok()
                .and_then(|o| self.bytes.get(o..o.checked_add(8)?))
            {
                return Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
            }
        }
        let mut word = [0u8; 8];
        read_kernel(self.prog, VirtAddr(addr), &mut word).map_err(|_| StackEnd::Unreadable {
            addr: VirtAddr(addr),
        })?;
        Ok(u64::from_le_bytes(word))
    }
}

/// Where the registers the unwinder may consult live.
#[derive(Clone, Copy, Debug)]
enum RegsAt {
    /// A `struct pt_regs` (or the IRET-frame tail of one) in memory.
    Memory(u64),
    /// The registers the dump recorded for a CPU.
    Initial,
}

/// The kernel's `struct unwind_state`, minus what only matters live.
struct State {
    ip: u64,
    sp: u64,
    bp: u64,
    regs: Option<RegsAt>,
    full_regs: bool,
    prev_regs: Option<RegsAt>,
    signal: bool,
}

/// Unwinds kernel stacks of one program. Build it once ([`Unwinder::new`]),
/// then ask for as many stacks as needed.
pub struct Unwinder<'p> {
    prog: &'p Program,
    format: OrcFormat,
    orc: OrcTable,
    modules: Vec<ModuleCode>,
    /// Notes about what is missing (module tables unreadable, ...).
    pub notices: Vec<String>,
    switch: std::result::Result<SwitchFrame, String>,
    /// `_stext.._etext`, run time.
    text: (u64, u64),
    /// `_sinittext.._einittext`, run time: where swapper/0's stack starts
    /// (`start_kernel`), text though freed after boot.
    init_text: Option<(u64, u64)>,
    /// `.sched.text` and `.spinlock.text`, run time: `/proc/PID/stack` leaves them out.
    sched: Vec<(u64, u64)>,
    /// `ret_from_fork` / `ret_from_fork_asm`, run time: a new task's first ip.
    fork_entries: Vec<u64>,
    thread_size: u64,
    /// Registers of each CPU, from the dump.
    cpu_regs: BTreeMap<u32, Registers>,
    module_names: Mutex<HashMap<u64, String>>,
    cfi: OnceLock<Option<crate::debuginfo::cfi::Cfi<'p>>>,
}

impl<'p> Unwinder<'p> {
    /// Load the ORC tables (the vmlinux's from the file, or from the dump's
    /// memory when the file lacks them; each module's from the dump) and
    /// what else the unwinder needs.
    pub fn new(prog: &'p Program, cpu_regs: BTreeMap<u32, Registers>) -> Result<Unwinder<'p>> {
        let offset = prog.located.layout.kaslr_offset;
        let mut notices = Vec::new();
        let (ip_base, ips, orcs) = match (
            prog.debug.section(".orc_unwind_ip"),
            prog.debug.section(".orc_unwind"),
        ) {
            (Some((ip_addr, ips)), Some((_, orcs))) => (
                ip_addr.get().wrapping_add(offset),
                std::borrow::Cow::Borrowed(ips),
                std::borrow::Cow::Borrowed(orcs),
            ),
            _ => Self::orc_from_memory(prog).map_err(|e| Error::BadFile {
                path: prog.debug.path().to_path_buf(),
                what: format!(
                    "kernel backtraces need ORC tables (CONFIG_UNWINDER_ORC): \
                     no .orc_unwind sections, and the dump's copy is unusable: {e}"
                ),
            })?,
        };
        // The layout and register numbering, from the kernel itself.
        let detected = orc_detect::detect(prog, &orcs)?;
        notices.extend(detected.warning);
        let format = detected.format;
        let orc = OrcTable::parse(ip_base, &ips, &orcs, format)?;
        let sym = |name: &str| prog.symbol(name).ok().map(|a| a.0);
        let range = |a: &str, b: &str| Some((sym(a)?, sym(b)?));
        let text = range("_stext", "_etext").ok_or_else(|| Error::SymbolNotFound {
            name: "_stext/_etext".to_owned(),
            table: "the kernel's symbol table",
        })?;
        let init_text = range("_sinittext", "_einittext");
        let sched = [
            range("__sched_text_start", "__sched_text_end"),
            range("__lock_text_start", "__lock_text_end"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let fork_entries = ["ret_from_fork", "ret_from_fork_asm"]
            .iter()
            .filter_map(|n| sym(n))
            .collect();
        let thread_size = match (
            prog.debug.symbol("__start_init_task"),
            prog.debug.symbol("__end_init_task"),
        ) {
            (Some(s), Some(e)) if e.addr.get() > s.addr.get() => e.addr.get() - s.addr.get(),
            _ => 16 << 10,
        };
        let modules = match Self::modules(prog, format) {
            Ok((m, mut n)) => {
                notices.append(&mut n);
                m
            }
            Err(e) => {
                notices.push(format!("modules not unwound: {e}"));
                Vec::new()
            }
        };
        Ok(Unwinder {
            prog,
            format,
            orc,
            modules,
            notices,
            switch: SwitchFrame::resolve(&prog.debug).map_err(|e| e.to_string()),
            text,
            init_text,
            sched,
            fork_entries,
            thread_size: thread_size.clamp(4096, 1 << 20),
            cpu_regs,
            module_names: Mutex::new(HashMap::new()),
            cfi: OnceLock::new(),
        })
    }

    fn find_orc(&self, ip: u64) -> Option<OrcEntry> {
        if self.text.0 <= ip && ip < self.text.1 {
            return self.orc.find(ip);
        }
        if let Some(m) = self.module_of(ip) {
            return m.orc.find(ip);
        }
        // Init text and anything else the vmlinux table covers.
        match self.orc.span() {
            Some((lo, hi)) if lo <= ip && ip <= hi => self.orc.find(ip),
            _ => None,
        }
    }

    /// The stack of a task: from its CPU's registers if it is running on a
    /// CPU the dump has registers for, otherwise from its switch frame.
    pub fn task_stack(&self, task: &Task) -> Stack {
        if task.current {
            if let Some((cpu, regs)) = task.cpu.and_then(|c| Some((c, *self.cpu_regs.get(&c)?))) {
                return self.cpu_stack(cpu, &regs, Some(task.stack.0));
            }
        }
        let start = StackStart::Switched;
        if task.stack.0 == 0 {
            // An exited task whose stack is gone (`try_get_task_stack()` fails).
            return Stack {
                start,
                frames: Vec::new(),
                end: StackEnd::NoStack {
                    what: "the task has exited and its stack is freed".to_owned(),
                },
            };
        }
        let frame = match &self.switch {
            Ok(f) => f,
            Err(e) => {
                return Stack {
                    start,
                    frames: Vec::new(),
                    end: StackEnd::NoStack {
                        what: format!("struct inactive_task_frame: {e}"),
                    },
                }
            }
        };
        let regs = match frame.registers(|a, b| read_kernel(self.prog, a, b), task.task) {
            Ok(r) => r,
            Err(e) => {
                return Stack {
                    start,
                    frames: Vec::new(),
                    end: StackEnd::NoStack {
                        what: format!("switch frame unreadable: {e}"),
                    },
                }
            }
        };
        let state = State {
            ip: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
            regs: None,
            full_regs: false,
            prev_regs: None,
            signal: self.fork_entries.contains(&regs.rip),
        };
        self.unwind(start, state, &regs, Some(task.stack.0))
    }

    /// The stack a CPU was on, from its registers.
    pub fn cpu_stack(&self, cpu: u32, regs: &Registers, task_stack: Option<u64>) -> Stack {
        let start = StackStart::Cpu { cpu };
        if regs.user_mode() {
            return Stack {
                start,
                frames: Vec::new(),
                end: StackEnd::NoStack {
                    what: format!("CPU {cpu} was in user mode at {:#x}", regs.rip),
                },
            };
        }
        let state = State {
            ip: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
            regs: Some(RegsAt::Initial),
            full_regs: true,
            prev_regs: None,
            signal: true,
        };
        self.unwind(start, state, regs, task_stack)
    }

    fn unwind(
        &self,
        start: StackStart,
        mut state: State,
        initial: &Registers,
        task_stack: Option<u64>,
    ) -> Stack {
        // Copy the live part of the task's stack once: most reads hit it.
        let mut mem = StackMemory {
            prog: self.prog,
            base: 0,
            bytes: Vec::new(),
        };
        // A stack that starts on the task's stack stays on it (unwinding
        // only ever goes outwards, from irq stacks to the task's); one that
        // starts elsewhere (an irq or exception stack) is not bounded.
        let bounds = task_stack
            .map(|s| (s, s.saturating_add(self.thread_size)))
            .filter(|&(lo, hi)| lo <= state.sp && state.sp < hi);
        if let Some((lo, hi)) = bounds {
            {
                let from = (state.sp & !0xfff).max(lo);
                let mut bytes = vec![0u8; (hi - from) as usize];
                if read_kernel(self.prog, VirtAddr(from), &mut bytes).is_ok() {
                    mem.base = from;
                    mem.bytes = bytes;
                }
            }
        }
        // A switched-out task's first pc is the return address its call to
        // __switch_to_asm pushed (unless it never ran: ret_from_fork).
        let first = match start {
            StackStart::Switched if !state.signal => FrameKind::Call,
            _ => FrameKind::Start,
        };
        // A pc outside the kernel's and the modules' text (zero registers
        // from a damaged note, a garbage saved stack) is no frame: printed
        // as a symbol it would read `_end+0x5c3e0000/0x0`.
        if !self.is_code(state.ip) {
            return Stack {
                start,
                frames: Vec::new(),
                end: not_text(state.ip),
            };
        }
        let mut frames = vec![Frame {
            pc: VirtAddr(state.ip),
            sp: VirtAddr(state.sp),
            kind: first,
            regs: None,
        }];
        let end = loop {
            if frames.len() >= MAX_FRAMES {
                break StackEnd::TooDeep;
            }
            match self.step(&mut state, &mem, initial, bounds) {
                // The pt_regs of user mode end the kernel stack.
                Ok(FrameKind::Regs | FrameKind::Iret)
                    if !self.is_kernel_text(state.ip) && state.ip < 1 << 47 =>
                {
                    break StackEnd::User {
                        pc: VirtAddr(state.ip),
                        sp: VirtAddr(state.sp),
                    }
                }
                Ok(_) if !self.is_code(state.ip) => break not_text(state.ip),
                Ok(kind) => frames.push(Frame {
                    pc: VirtAddr(state.ip),
                    sp: VirtAddr(state.sp),
                    kind,
                    regs: match (kind, state.regs) {
                        (FrameKind::Regs | FrameKind::Iret, Some(RegsAt::Memory(a))) => {
                            Some(VirtAddr(a))
                        }
                        _ => None,
                    },
                }),
                Err(end) => break end,
            }
        };
        Stack { start, frames, end }
    }

    fn reg(
        &self,
        at: RegsAt,
        word: u64,
        mem: &StackMemory<'_>,
        initial: &Registers,
    ) -> std::result::Result<u64, StackEnd> {
        match at {
            RegsAt::Memory(a) => mem.u64(a.wrapping_add(8 * word)),
            RegsAt::Initial => Ok(initial_reg(initial, word)),
        }
    }

    /// `get_reg()`: a register from the last `pt_regs` crossed, if known.
    fn get_reg(
        &self,
        state: &State,
        word: u64,
        mem: &StackMemory<'_>,
        initial: &Registers,
    ) -> Option<u64> {
        let at = if state.full_regs {
            state.regs?
        } else {
            state.prev_regs?
        };
        self.reg(at, word, mem, initial).ok()
    }

    /// One step of `unwind_next_frame()`.
    fn step(
        &self,
        state: &mut State,
        mem: &StackMemory<'_>,
        initial: &Registers,
        bounds: Option<(u64, u64)>,
    ) -> std::result::Result<FrameKind, StackEnd> {
        let (orig_ip, prev_sp) = (state.ip, state.sp);
        if let Some(at) = state.regs {
            let cs = self.reg(at, pt::CS, mem, initial)?;
            if cs & 3 != 0 {
                let pc = self.reg(at, pt::IP, mem, initial)?;
                let sp = self.reg(at, pt::SP, mem, initial)?;
                return Err(StackEnd::User {
                    pc: VirtAddr(pc),
                    sp: VirtAddr(sp),
                });
            }
        }
        let look = if state.signal {
            state.ip
        } else {
            state.ip.wrapping_sub(1)
        };
        let err = |what: String| StackEnd::Error { what };
        let signal = state.signal;
        let here = || {
            self.symbolize(orig_ip, !signal)
                .map_or_else(|| format!("{orig_ip:#x}"), |s| s.display())
        };
        let (orc, guessed) = match if state.ip == 0 {
            None
        } else {
            self.find_orc(look)
        } {
            Some(o) => (o, false),
            None if state.ip == 0 => return Err(err("pc is 0".to_owned())),
            None => (OrcEntry::FRAME_POINTER, true),
        };
        let read = |addr: u64| -> std::result::Result<u64, StackEnd> {
            if let Some((lo, hi)) = bounds {
                if addr < lo || addr.saturating_add(8) > hi {
                    return Err(err(format!(
                        "{} reads {addr:#x}, outside the task's stack {lo:#x}-{hi:#x}",
                        here()
                    )));
                }
            }
            mem.u64(addr)
        };
        match orc.kind {
            OrcType::Undefined => {
                return match self.cfi_row(look) {
                    Some(row) => self.cfi_step(state, row, read),
                    None => Err(err(format!("no ORC data at {}", here()))),
                }
            }
            OrcType::EndOfStack => return Err(StackEnd::Bottom),
            _ => {}
        }
        let off = |v: i16| i64::from(v);
        let mut indirect = false;
        let mut sp = match orc.sp_reg {
            reg::SP => state.sp.wrapping_add_signed(off(orc.sp_offset)),
            reg::BP => state.bp.wrapping_add_signed(off(orc.sp_offset)),
            reg::SP_INDIRECT => {
                indirect = true;
                state.sp
            }
            reg::BP_INDIRECT => {
                indirect = true;
                state.bp.wrapping_add_signed(off(orc.sp_offset))
            }
            r @ (reg::R10 | reg::R13 | reg::DI | reg::DX | reg::AX) => {
                let word = match r {
                    reg::R10 => pt::R10,
                    reg::R13 => pt::R13,
                    reg::DI => pt::DI,
                    reg::AX => pt::AX,
                    _ => pt::DX,
                };
                self.get_reg(state, word, mem, initial).ok_or_else(|| {
                    err(format!("{}: the CFA is in a register nobody saved", here()))
                })?
            }
            r => {
                return Err(err(format!(
                    "unknown ORC sp register {} at {}",
                    r & !reg::UNKNOWN,
                    here()
                )))
            }
        };
        if indirect {
            sp = read(sp)?;
            if orc.sp_reg == reg::SP_INDIRECT {
                sp = sp.wrapping_add_signed(off(orc.sp_offset));
            }
        }
        let kind = match orc.kind {
            OrcType::Call => {
                state.ip = read(sp.wrapping_sub(8))?;
                state.sp = sp;
                state.regs = None;
                state.prev_regs = None;
                if guessed {
                    FrameKind::Guess
                } else {
                    FrameKind::Call
                }
            }
            OrcType::Regs => {
                state.ip = read(sp.wrapping_add(8 * pt::IP))?;
                state.sp = read(sp.wrapping_add(8 * pt::SP))?;
                state.regs = Some(RegsAt::Memory(sp));
                state.prev_regs = None;
                state.full_regs = true;
                FrameKind::Regs
            }
            OrcType::RegsPartial => {
                state.ip = read(sp)?;
                state.sp = read(sp.wrapping_add(8 * (pt::SP - pt::IP)))?;
                if state.full_regs {
                    state.prev_regs = state.regs;
                }
                state.regs = Some(RegsAt::Memory(sp.wrapping_sub(pt::IRET_FRAME_OFFSET)));
                state.full_regs = false;
                FrameKind::Iret
            }
            OrcType::Undefined | OrcType::EndOfStack => unreachable!("handled above"),
        };
        // 6.3+ keeps the entry's signal bit; older kernels derive it from
        // the type: OrcEntry::decode has normalised both.
        state.signal = orc.signal;
        match orc.bp_reg {
            reg::UNDEFINED => {
                if let Some(bp) = self.get_reg(state, pt::BP, mem, initial) {
                    state.bp = bp;
                }
            }
            reg::PREV_SP => state.bp = read(sp.wrapping_add_signed(off(orc.bp_offset)))?,
            reg::BP => state.bp = read(state.bp.wrapping_add_signed(off(orc.bp_offset)))?,
            r => {
                return Err(err(format!(
                    "unknown ORC bp register {} at {}",
                    r & !reg::UNKNOWN,
                    here()
                )))
            }
        }
        // A stack that does not move up is a loop.
        let same_stack = match bounds {
            Some((lo, hi)) => (lo..hi).contains(&state.sp) && (lo..hi).contains(&prev_sp),
            None => state.sp >> 14 == prev_sp >> 14,
        };
        if same_stack && state.sp <= prev_sp {
            return Err(err(format!(
                "stack going in the wrong direction at {} (sp {:#x} after {prev_sp:#x})",
                here(),
                state.sp
            )));
        }
        Ok(kind)
    }

    /// The `.debug_frame` rule for a run-time code address in the vmlinux.
    fn cfi_row(&self, ip: u64) -> Option<crate::debuginfo::cfi::CfiRow> {
        if !(self.text.0 <= ip && ip < self.text.1) {
            return None;
        }
        let cfi = self.cfi.get_or_init(|| self.prog.debug.cfi()).as_ref()?;
        cfi.row(LinkAddr(
            ip.wrapping_sub(self.prog.located.layout.kaslr_offset),
        ))
    }

    /// One step by DWARF CFI: the CFA from rsp or rbp, the return address
    /// and perhaps rbp saved relative to it.
    fn cfi_step(
        &self,
        state: &mut State,
        row: crate::debuginfo::cfi::CfiRow,
        read: impl Fn(u64) -> std::result::Result<u64, StackEnd>,
    ) -> std::result::Result<FrameKind, StackEnd> {
        use crate::debuginfo::cfi::CfiBase;
        let base = match row.cfa_base {
            CfiBase::Sp => state.sp,
            CfiBase::Bp => state.bp,
        };
        let cfa = base.wrapping_add_signed(row.cfa_offset);
        let prev_sp = state.sp;
        state.ip = read(cfa.wrapping_add_signed(row.ra_offset))?;
        if let Some(o) = row.bp_offset {
            state.bp = read(cfa.wrapping_add_signed(o))?;
        }
        state.sp = cfa;
        state.regs = None;
        state.prev_regs = None;
        state.signal = false;
        if state.sp <= prev_sp {
            return Err(StackEnd::Error {
                what: format!("DWARF CFI moved the stack pointer down at {prev_sp:#x}"),
            });
        }
        Ok(FrameKind::Cfi)
    }
}

/// A register of a dump's CPU by its word index in `struct pt_regs`.
fn initial_reg(r: &Registers, word: u64) -> u64 {
    match word {
        0 => r.r15,
        1 => r.r14,
        2 => r.r13,
        3 => r.r12,
        4 => r.rbp,
        5 => r.rbx,
        6 => r.r11,
        7 => r.r10,
        8 => r.r9,
        9 => r.r8,
        10 => r.rax,
        11 => r.rcx,
        12 => r.rdx,
        13 => r.rsi,
        14 => r.rdi,
        15 => r.orig_rax,
        16 => r.rip,
        17 => r.cs,
        18 => r.eflags,
        19 => r.rsp,
        20 => r.ss,
        _ => 0,
    }
}

/// The end of a trace at a pc that is not kernel text.
fn not_text(pc: u64) -> StackEnd {
    StackEnd::Error {
        what: format!("pc {pc:#x} is not kernel text (damaged or missing registers?)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pt_regs_words_match_the_registers_layout() {
        let r = Registers {
            r13: 13,
            rbp: 4,
            r10: 10,
            rdx: 12,
            rdi: 14,
            rip: 16,
            cs: 17,
            rsp: 19,
            ..Registers::default()
        };
        assert_eq!(initial_reg(&r, pt::R13), 13);
        assert_eq!(initial_reg(&r, pt::BP), 4);
        assert_eq!(initial_reg(&r, pt::R10), 10);
        assert_eq!(initial_reg(&r, pt::DX), 12);
        assert_eq!(initial_reg(&r, pt::DI), 14);
        assert_eq!(initial_reg(&r, pt::IP), 16);
        assert_eq!(initial_reg(&r, pt::CS), 17);
        assert_eq!(initial_reg(&r, pt::SP), 19);
    }

    #[test]
    fn symbol_display_like_the_kernel() {
        let s = CodeSymbol {
            function: "kthread".into(),
            offset: 0xb7,
            size: 0xbf,
            module: None,
        };
        assert_eq!(s.display(), "kthread+0xb7/0xbf");
        let m = CodeSymbol {
            module: Some("kpeek_fixture".into()),
            ..s
        };
        assert_eq!(m.display(), "kthread+0xb7/0xbf [kpeek_fixture]");
    }
}
