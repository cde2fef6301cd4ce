//! Where a task that is not on a CPU stopped: the `struct
//! inactive_task_frame` that `__switch_to_asm` pushed on its kernel stack.
//!
//! `__switch_to_asm(prev, next)` pushes rbp, rbx, r12–r15 on `prev`'s stack
//! and stores the stack pointer in `prev->thread.sp`; the return address into
//! `__schedule` (or `ret_from_fork_asm` for a task that never ran) sits just
//! above them. The struct exists since v4.9 (0100301bfdf5); its layout is read
//! from the DWARF, so a kernel with the short-lived `flags` member (around
//! v5.0) or a different order still works.

use super::program::Program;
use crate::addr::VirtAddr;
use crate::dump::Registers;
use crate::Result;

/// `__KERNEL_CS` on x86_64.
pub const KERNEL_CS: u64 = 0x10;
/// `__KERNEL_DS` (the kernel's stack segment) on x86_64.
pub const KERNEL_DS: u64 = 0x18;

/// The layout of `struct inactive_task_frame`, and where `task_struct`
/// keeps the saved stack pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchFrame {
    /// `offsetof(struct task_struct, thread.sp)`.
    pub thread_sp: u64,
    /// `sizeof(struct inactive_task_frame)`.
    pub size: u64,
    /// Offsets of r15, r14, r13, r12, bx, bp and ret_addr in the frame.
    pub r15: u64,
    /// See `r15`.
    pub r14: u64,
    /// See `r15`.
    pub r13: u64,
    /// See `r15`.
    pub r12: u64,
    /// See `r15`.
    pub bx: u64,
    /// See `r15`.
    pub bp: u64,
    /// See `r15`.
    pub ret_addr: u64,
}

impl SwitchFrame {
    /// Resolve the layout from the vmlinux's DWARF.
    pub fn resolve(prog: &Program) -> Result<SwitchFrame> {
        let d = &prog.debug;
        let f = |m: &str| d.member("inactive_task_frame", m).map(|m| m.offset);
        Ok(SwitchFrame {
            thread_sp: d.member("task_struct", "thread.sp")?.offset,
            size: d.type_size("inactive_task_frame")?,
            r15: f("r15")?,
            r14: f("r14")?,
            r13: f("r13")?,
            r12: f("r12")?,
            bx: f("bx")?,
            bp: f("bp")?,
            ret_addr: f("ret_addr")?,
        })
    }

    /// The registers `task` was switched out with, as the kernel's own
    /// unwinder (`__unwind_start`) and drgn start from them:
    /// `rip = frame.ret_addr`, `rsp = thread.sp + sizeof(frame)`, the
    /// callee-saved registers from the frame, kernel segments, and zero for
    /// the caller-saved registers nobody kept.
    pub fn registers(&self, prog: &Program, task: VirtAddr) -> Result<Registers> {
        let mut word = [0u8; 8];
        read_kernel(
            prog,
            VirtAddr(task.0.wrapping_add(self.thread_sp)),
            &mut word,
        )?;
        let sp = u64::from_le_bytes(word);
        let len = usize::try_from(self.size).unwrap_or(usize::MAX).min(4096);
        let mut frame = vec![0u8; len];
        read_kernel(prog, VirtAddr(sp), &mut frame)?;
        let at = |off: u64| -> u64 {
            let off = off as usize;
            frame
                .get(off..off.saturating_add(8))
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        Ok(Registers {
            r15: at(self.r15),
            r14: at(self.r14),
            r13: at(self.r13),
            r12: at(self.r12),
            rbx: at(self.bx),
            rbp: at(self.bp),
            rip: at(self.ret_addr),
            rsp: sp.wrapping_add(self.size),
            cs: KERNEL_CS,
            ss: KERNEL_DS,
            ..Registers::default()
        })
    }
}

/// Read kernel virtual memory; when [`Program::read`] fails, walk the
/// kernel's page tables (`init_top_pgt`) for it.
///
/// `Program::read` translates everything above `page_offset_base` as the
/// direct map, up to 64 TiB. With `CONFIG_RANDOMIZE_MEMORY` the vmalloc area
/// (where `CONFIG_VMAP_STACK` puts kernel stacks) starts right after the
/// direct map, well inside those 64 TiB, so stacks come out as physical
/// addresses far beyond RAM and fault. The page-table walk is always right.
pub fn read_kernel(prog: &Program, addr: VirtAddr, buf: &mut [u8]) -> Result<()> {
    match prog.read(addr, buf) {
        Ok(()) => Ok(()),
        Err(first) => prog
            .space
            .read_via(prog.located.layout.pgd, addr, buf)
            .map_err(|_| first),
    }
}
