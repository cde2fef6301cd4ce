//! x86_64 register sets: a CPU's general registers as `NT_PRSTATUS` and
//! GDB name them, and the system registers QEMU records per CPU.

use crate::bytes::{le32, le64};

/// Offset of `pr_pid` in x86_64 `struct elf_prstatus`.
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_reg` (27 × u64, `user_regs_struct` order).
const PRSTATUS_REG: usize = 112;
/// `QEMUCPUState` v1 is 432 bytes.
const QEMU_CPU_STATE_LEN: usize = 432;

/// x86_64 registers of one CPU, in `user_regs_struct` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub struct Registers {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Registers {
    /// Parse the 27-register `pr_reg` array of an `elf_prstatus`.
    pub fn from_pr_reg(r: &[u8]) -> Option<Registers> {
        let g = |i: usize| le64(r, i * 8);
        Some(Registers {
            r15: g(0)?,
            r14: g(1)?,
            r13: g(2)?,
            r12: g(3)?,
            rbp: g(4)?,
            rbx: g(5)?,
            r11: g(6)?,
            r10: g(7)?,
            r9: g(8)?,
            r8: g(9)?,
            rax: g(10)?,
            rcx: g(11)?,
            rdx: g(12)?,
            rsi: g(13)?,
            rdi: g(14)?,
            orig_rax: g(15)?,
            rip: g(16)?,
            cs: g(17)?,
            eflags: g(18)?,
            rsp: g(19)?,
            ss: g(20)?,
            fs_base: g(21)?,
            gs_base: g(22)?,
            ds: g(23)?,
            es: g(24)?,
            fs: g(25)?,
            gs: g(26)?,
        })
    }

    /// Registers by GDB's names for them (`rax`, `rip`, `eflags`,
    /// `fs_base`, ...), as a debugger reports them; a register `value`
    /// does not know is 0.
    pub fn from_named(value: impl Fn(&str) -> Option<u64>) -> Registers {
        let r = |name: &str| value(name).unwrap_or(0);
        Registers {
            r15: r("r15"),
            r14: r("r14"),
            r13: r("r13"),
            r12: r("r12"),
            rbp: r("rbp"),
            rbx: r("rbx"),
            r11: r("r11"),
            r10: r("r10"),
            r9: r("r9"),
            r8: r("r8"),
            rax: r("rax"),
            rcx: r("rcx"),
            rdx: r("rdx"),
            rsi: r("rsi"),
            rdi: r("rdi"),
            rip: r("rip"),
            cs: r("cs"),
            eflags: r("eflags"),
            rsp: r("rsp"),
            ss: r("ss"),
            fs_base: r("fs_base"),
            gs_base: r("gs_base"),
            ..Registers::default()
        }
    }

    /// Whether the CPU was in user mode (`cs & 3 == 3`).
    pub fn user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// One `NT_PRSTATUS` note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrStatus {
    /// `pr_pid`: the task running on the CPU (kdump), or CPU index + 1 (QEMU).
    pub pid: i32,
    /// The CPU's registers.
    pub regs: Registers,
}

/// The system registers QEMU records per CPU (`QEMUCPUState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QemuCpuState {
    /// Instruction pointer.
    pub rip: u64,
    /// Stack pointer.
    pub rsp: u64,
    /// Page-table root.
    pub cr3: u64,
    /// Control register 4 (bit 12: 5-level paging).
    pub cr4: u64,
    /// Base of the interrupt descriptor table.
    pub idt_base: u64,
    /// Base of the GS segment (per-CPU area while in the kernel).
    pub gs_base: u64,
}

impl PrStatus {
    /// An x86_64 `struct elf_prstatus` (the desc of an `NT_PRSTATUS` note);
    /// `None` if it is cut short.
    pub fn parse(desc: &[u8]) -> Option<PrStatus> {
        let pid = le32(desc, PRSTATUS_PID)? as i32;
        let regs = Registers::from_pr_reg(desc.get(PRSTATUS_REG..)?)?;
        Some(PrStatus { pid, regs })
    }
}

impl QemuCpuState {
    /// QEMU's `QEMUCPUState` (the desc of a `QEMU` note); `None` if it is
    /// shorter than version 1's.
    pub fn parse(desc: &[u8]) -> Option<QemuCpuState> {
        if desc.len() < QEMU_CPU_STATE_LEN {
            return None;
        }
        let g = |off| le64(desc, off).unwrap_or(0);
        Some(QemuCpuState {
            rsp: g(56),
            rip: g(136),
            gs_base: g(248 + 16),
            idt_base: g(368 + 16),
            cr3: g(416),
            cr4: g(424),
        })
    }
}
