//! `kpeek serve`: a crash dump as a GDB remote target, read-only, with
//! every CPU and every task as a thread.
//!
//! Built on the `gdbstub` crate, laid out like its `armv4t` example: this
//! file is the [`Target`] and its [`MultiThreadBase`] (registers, memory,
//! the thread list); each protocol extension has its own file:
//!
//! - [`thread_extra_info`]: `pid comm` (`[comm]` for kernel threads) in `info threads`;
//! - [`section_offsets`]: `qOffsets`, so the vmlinux's symbols line up under KASLR;
//! - [`monitor`]: `monitor ps`, `threads`, `info`, `info version`;
//! - [`threads`]: the thread table (thread ids, registers of sleeping tasks);
//! - [`launch`]: `kpeek gdb`, GDB started attached with kpeek.py sourced;
//! - [`relay`]: `kpeek serve --qemu`, a live guest's tasks as threads, in
//!   front of QEMU's gdbstub (its own packet loop: the guest runs and stops);
//! - [`serve`]: the accept loop, one session per connection, and
//!   [`ScriptedClient`], a connection that replays a client's bytes (tests, fuzzing).
//!
//! Everything a session can fail at is non-fatal: unreadable memory answers
//! `E79` (GDB says "Cannot access memory"), writes to memory or registers are
//! refused the same way, and the connection stays up.

pub mod launch;
pub mod monitor;
pub mod relay;
pub mod section_offsets;
pub mod serve;
pub mod thread_extra_info;
pub mod threads;

use gdbstub::common::Tid;
use gdbstub::target::ext::base::multithread::MultiThreadBase;
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use gdbstub_arch::x86::X86_64_SSE;

use crate::addr::VirtAddr;
use crate::kernel::program::read_kernel;
use crate::kernel::Program;

pub use serve::{serve, serve_connection, Event, ScriptedClient};
pub use threads::{Snapshot, Thread, ThreadKind};

/// One GDB session over a [`Snapshot`].
pub struct Session<'s, 'p> {
    snap: &'s Snapshot<'p>,
}

impl<'s, 'p> Session<'s, 'p> {
    /// A session showing `snap`.
    pub fn new(snap: &'s Snapshot<'p>) -> Session<'s, 'p> {
        Session { snap }
    }
}

impl Target for Session<'_, '_> {
    type Arch = X86_64_SSE;
    /// Nothing a dump does is fatal to a session; the type is there for gdbstub.
    type Error = crate::Error;

    #[inline(always)]
    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    /// Breakpoints would be memory writes, which a dump refuses: harmless.
    #[inline(always)]
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    #[inline(always)]
    fn support_monitor_cmd(
        &mut self,
    ) -> Option<gdbstub::target::ext::monitor_cmd::MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    #[inline(always)]
    fn support_section_offsets(
        &mut self,
    ) -> Option<gdbstub::target::ext::section_offsets::SectionOffsetsOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for Session<'_, '_> {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let thread = self.snap.thread(tid).ok_or(TargetError::NonFatal)?;
        // A task whose saved stack is missing from the dump: zeros, so that
        // GDB still lists it (`0x0 in ?? ()`) instead of failing `info threads`.
        *regs = threads::core_regs(&thread.registers.unwrap_or_default());
        Ok(())
    }

    fn write_registers(&mut self, _regs: &X86_64CoreRegs, _tid: Tid) -> TargetResult<(), Self> {
        Err(TargetError::NonFatal)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], _tid: Tid) -> TargetResult<usize, Self> {
        // Every thread shares the kernel's address space.
        match read_up_to_fault(self.snap.prog, start, data) {
            0 if !data.is_empty() => Err(TargetError::NonFatal),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, _start: u64, _data: &[u8], _tid: Tid) -> TargetResult<(), Self> {
        // A dump is read-only.
        Err(TargetError::NonFatal)
    }

    fn list_active_threads(&mut self, register: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for t in &self.snap.threads {
            register(t.tid);
        }
        Ok(())
    }

    #[inline(always)]
    fn support_thread_extra_info(
        &mut self,
    ) -> Option<gdbstub::target::ext::thread_extra_info::ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

/// Read `data.len()` bytes of kernel memory at `start`, or as many as can be
/// read before the first page that faults; returns how many.
fn read_up_to_fault(prog: &Program, start: u64, data: &mut [u8]) -> usize {
    if read_kernel(prog, VirtAddr(start), data).is_ok() {
        return data.len();
    }
    let mut done = 0usize;
    while done < data.len() {
        let addr = start.wrapping_add(done as u64);
        let to_page_end = 0x1000 - (addr & 0xfff);
        let n = (data.len() - done).min(usize::try_from(to_page_end).unwrap_or(usize::MAX));
        if read_kernel(prog, VirtAddr(addr), &mut data[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    done
}
