//! Where a task that is not on a CPU stopped: the `struct
//! inactive_task_frame` that `__switch_to_asm` pushed on its kernel stack.
//!
//! `__switch_to_asm(prev, next)` pushes rbp, rbx, r12–r15 on `prev`'s stack
//! and stores the stack pointer in `prev->thread.sp`; the return address into
//! `__schedule` (or `ret_from_fork_asm` for a task that never ran) sits just
//! above them. The struct exists since v4.9 (0100301bfdf5); its layout is read
//! from the DWARF, so a kernel with the short-lived `flags` member (around
//! v5.0) or a different order still works.

use crate::addr::VirtAddr;
use crate::arch::Registers;
use crate::debuginfo::KernelDebugInfo;
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
    pub fn resolve(d: &KernelDebugInfo) -> Result<SwitchFrame> {
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
    /// the caller-saved registers nobody kept. `read` reads kernel memory.
    pub fn registers(
        &self,
        read: impl Fn(VirtAddr, &mut [u8]) -> Result<()>,
        task: VirtAddr,
    ) -> Result<Registers> {
        let mut word = [0u8; 8];
        read(VirtAddr(task.0.wrapping_add(self.thread_sp)), &mut word)?;
        let sp = u64::from_le_bytes(word);
        let len = usize::try_from(self.size).unwrap_or(usize::MAX).min(4096);
        let mut frame = vec![0u8; len];
        read(VirtAddr(sp), &mut frame)?;
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
