//! The threads a GDB session sees: the CPUs, then every task, each with a
//! thread id and the registers it stopped with.
//!
//! Thread ids (`Tid`, never zero) are chosen so that a task keeps its pid:
//!
//! | thread | tid |
//! |---|---|
//! | a task with pid `p > 0` | `p` (pids stay below `PID_MAX_LIMIT` = 0x400000) |
//! | the idle task `swapper/N` of CPU `N` (pid 0) | `0x400000 + N` |
//! | CPU `N` (registers from the dump's `NT_PRSTATUS`) | `0x800000 + N` |
//! | anything else (a second task with the same pid, a bad pid) | `0xc00000 + its index in the task list` |
//!
//! GDB numbers threads in the order they are listed, so `thread 1` is CPU 0,
//! `thread N` is CPU N−1 for every CPU, as on QEMU's gdbstub, and the tasks
//! follow in `task_list` order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroUsize;

use gdbstub::common::Tid;
use gdbstub_arch::x86::reg::X86_64CoreRegs;

use crate::arch::Registers;
use crate::arch::SwitchFrame;
use crate::kernel::info::Info;
use crate::kernel::program::read_kernel;
use crate::kernel::{task_list, Program, TaskList};
use crate::Result;

/// `PID_MAX_LIMIT` on 64-bit kernels: every pid is below it.
pub const PID_MAX_LIMIT: usize = 0x40_0000;
/// Thread ids of the per-CPU idle tasks (pid 0): this plus the CPU number.
pub const IDLE_TID_BASE: usize = PID_MAX_LIMIT;
/// Thread ids of the CPUs: this plus the CPU number.
pub const CPU_TID_BASE: usize = 2 * PID_MAX_LIMIT;
/// Thread ids of tasks whose pid cannot be their tid: this plus their index.
pub const OTHER_TID_BASE: usize = 3 * PID_MAX_LIMIT;

/// What a thread stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadKind {
    /// A CPU, with the registers the dump recorded for it.
    Cpu(u32),
    /// A task: its index in [`Snapshot::tasks`].
    Task(usize),
}

/// One GDB thread.
#[derive(Clone, Debug)]
pub struct Thread {
    /// Its thread id.
    pub tid: Tid,
    /// CPU or task.
    pub kind: ThreadKind,
    /// What `info threads` shows in parentheses: `pid comm`, `[comm]` for
    /// kernel threads, `CPU N: ...` for CPUs.
    pub label: String,
    /// Its registers, or `None` when they could not be read (GDB then sees zeros).
    pub registers: Option<Registers>,
}

/// Everything a server shows, gathered once and shared by every session.
pub struct Snapshot<'p> {
    /// The kernel.
    pub prog: &'p Program,
    /// Every task, as `kpeek ps --threads` lists them.
    pub tasks: TaskList,
    /// The `kpeek info` summary.
    pub info: Info,
    /// The threads, CPUs first.
    pub threads: Vec<Thread>,
    /// Why some threads have no registers (one line per problem).
    pub notices: Vec<String>,
    /// Link-time addresses of the vmlinux's first two `PT_LOAD`s, for `qOffsets`.
    pub load_segments: Option<(u64, u64)>,
    by_tid: HashMap<usize, usize>,
}

fn tid(n: usize) -> Option<Tid> {
    NonZeroUsize::new(n)
}

impl<'p> Snapshot<'p> {
    /// Walk the tasks and read every thread's registers.
    pub fn gather(prog: &'p Program) -> Result<Snapshot<'p>> {
        let tasks = task_list(prog)?;
        let info = Info::gather(prog);
        // What `kpeek ps` warns about (a broken task list, a parent loop),
        // the server says too: on stderr when it starts, and in `monitor info`.
        let mut notices: Vec<String> = tasks.warnings.iter().map(|w| w.message.clone()).collect();
        let cpu_regs: BTreeMap<u32, Registers> =
            info.cpus.iter().map(|c| (c.cpu, c.registers)).collect();

        let mut threads = Vec::with_capacity(cpu_regs.len() + tasks.tasks.len());
        for (&cpu, regs) in &cpu_regs {
            let Some(t) = tid(CPU_TID_BASE + cpu as usize) else {
                continue;
            };
            let on_it = tasks
                .tasks
                .iter()
                .find(|t| t.current && t.cpu == Some(cpu))
                .map_or_else(|| "?".to_owned(), |t| task_label(t.pid, &t.comm, t.kthread));
            let panicked = if info.panic_cpu == Some(cpu) {
                ", panic"
            } else {
                ""
            };
            threads.push(Thread {
                tid: t,
                kind: ThreadKind::Cpu(cpu),
                label: format!("CPU {cpu}: {on_it}{panicked}"),
                registers: Some(*regs),
            });
        }

        let frame = SwitchFrame::resolve(&prog.debug);
        if let Err(e) = &frame {
            notices.push(format!(
                "sleeping tasks have no registers (struct inactive_task_frame: {e})"
            ));
        }
        let mut used = HashSet::new();
        let mut unreadable = 0usize;
        for (i, t) in tasks.tasks.iter().enumerate() {
            let pid = usize::try_from(t.pid).unwrap_or(0);
            let mut n = OTHER_TID_BASE + i;
            if pid > 0 && pid < PID_MAX_LIMIT && !used.contains(&pid) {
                n = pid;
            } else if pid == 0 && t.idle {
                if let Some(cpu) = t.cpu.map(|c| IDLE_TID_BASE + c as usize) {
                    if cpu < CPU_TID_BASE && !used.contains(&cpu) {
                        n = cpu;
                    }
                }
            }
            used.insert(n);
            let Some(tid) = tid(n) else { continue };
            let on_cpu = t
                .cpu
                .filter(|_| t.current)
                .and_then(|c| cpu_regs.get(&c).copied());
            let registers = match (on_cpu, &frame) {
                (Some(regs), _) => Some(regs),
                (None, Ok(frame)) => frame.registers(|a, b| read_kernel(prog, a, b), t.task).ok(),
                (None, Err(_)) => None,
            };
            if registers.is_none() && frame.is_ok() {
                unreadable += 1;
            }
            let mut label = task_label(t.pid, &t.comm, t.kthread);
            if on_cpu.is_some() {
                if let Some(c) = t.cpu {
                    label.push_str(&format!(", on CPU {c}"));
                }
            }
            threads.push(Thread {
                tid,
                kind: ThreadKind::Task(i),
                label,
                registers,
            });
        }
        if unreadable > 0 {
            notices.push(format!(
                "{unreadable} tasks: their saved stack (task->thread.sp) is not in the dump; GDB sees zero registers"
            ));
        }
        let by_tid = threads
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tid.get(), i))
            .collect();
        Ok(Snapshot {
            prog,
            tasks,
            info,
            threads,
            notices,
            load_segments: super::section_offsets::load_segments(prog.debug.path()).or_else(|| {
                // No vmlinux (kallsyms): x86_64's first two PT_LOADs
                // start at `_text` and `_sdata`, for a vmlinux the
                // user loads into GDB.
                let at = |name: &str| prog.debug.symbol(name).map(|s| s.addr.get());
                Some((at("_text")?, at("_sdata")?))
            }),
            by_tid,
        })
    }

    /// The thread with this id.
    pub fn thread(&self, tid: Tid) -> Option<&Thread> {
        self.by_tid
            .get(&tid.get())
            .and_then(|&i| self.threads.get(i))
    }

    /// Whether the vmlinux links `.data..percpu` at 0 (x86_64 before 6.15):
    /// then a blanket symbol offset misplaces per-CPU variables (see
    /// [`super::section_offsets`]).
    pub fn percpu_zero_based(&self) -> bool {
        self.prog
            .debug
            .symbol("__per_cpu_start")
            .is_some_and(|s| s.addr.get() == 0)
    }

    /// The KASLR offset GDB must shift the vmlinux's symbols by.
    pub fn kaslr_offset(&self) -> u64 {
        self.prog.located.layout.kaslr_offset
    }
}

/// `pid comm`, or `pid [comm]` for a kernel thread; the comm escaped
/// (`render::escape`): GDB prints it on the user's terminal.
pub fn task_label(pid: i32, comm: &str, kthread: bool) -> String {
    let comm = crate::render::escape(comm);
    if kthread {
        format!("{pid} [{comm}]")
    } else {
        format!("{pid} {comm}")
    }
}

/// The dump's registers in GDB's amd64 order.
pub fn core_regs(r: &Registers) -> X86_64CoreRegs {
    let mut out = X86_64CoreRegs {
        regs: [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ],
        eflags: r.eflags as u32,
        rip: r.rip,
        ..X86_64CoreRegs::default()
    };
    out.segments.cs = r.cs as u32;
    out.segments.ss = r.ss as u32;
    out.segments.ds = r.ds as u32;
    out.segments.es = r.es as u32;
    out.segments.fs = r.fs as u32;
    out.segments.gs = r.gs as u32;
    // The x87 control word after FNINIT; the dump has no FPU state.
    out.fpu.fctrl = 0x37f;
    out.mxcsr = 0x1f80;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_land_in_gdb_order() {
        let r = Registers {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rbp: 7,
            rsp: 8,
            r8: 9,
            r15: 16,
            rip: 0xffff_ffff_8100_0000,
            cs: 0x10,
            ss: 0x18,
            eflags: 0x246,
            ..Registers::default()
        };
        let c = core_regs(&r);
        assert_eq!(&c.regs[..9], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(c.regs[15], 16);
        assert_eq!(c.rip, 0xffff_ffff_8100_0000);
        assert_eq!(
            (c.segments.cs, c.segments.ss, c.eflags),
            (0x10, 0x18, 0x246)
        );
    }

    #[test]
    fn tid_ranges_do_not_overlap() {
        const {
            assert!(PID_MAX_LIMIT <= IDLE_TID_BASE);
            assert!(IDLE_TID_BASE + 8192 <= CPU_TID_BASE);
            assert!(CPU_TID_BASE + 8192 <= OTHER_TID_BASE);
        }
        assert_eq!(task_label(2, "kthreadd", true), "2 [kthreadd]");
        assert_eq!(task_label(300, "kpw-alpha", false), "300 kpw-alpha");
    }
}
