//! CPUs: the possible/present/online/active masks, and on each CPU its
//! current task, whether it is idle, and how many tasks its runqueue holds.

use serde::Serialize;

use super::program::Program;
use crate::addr::VirtAddr;
use crate::Result;

/// One CPU.
#[derive(Clone, Debug, Serialize)]
pub struct Cpu {
    /// CPU number.
    pub cpu: u32,
    /// In `__cpu_online_mask`.
    pub online: bool,
    /// The task it runs (`current`: `pcpu_hot.current_task`, or
    /// `current_task` before 6.2, or `rq->curr`).
    pub task: Option<VirtAddr>,
    /// Its pid.
    pub pid: Option<i32>,
    /// Its comm.
    pub comm: Option<String>,
    /// The CPU runs its idle task (`rq->curr == rq->idle`).
    pub idle: Option<bool>,
    /// `rq->nr_running`: tasks on the runqueue, the running one included.
    pub nr_running: Option<u32>,
}

/// The CPUs of a kernel.
#[derive(Clone, Debug, Serialize)]
pub struct Cpus {
    /// `__cpu_possible_mask`.
    pub possible: Vec<u32>,
    /// `__cpu_present_mask`.
    pub present: Vec<u32>,
    /// `__cpu_online_mask`.
    pub online: Vec<u32>,
    /// `__cpu_active_mask`.
    pub active: Vec<u32>,
    /// Each possible CPU.
    pub cpus: Vec<Cpu>,
}

/// The CPUs whose bits are set in a `struct cpumask` variable.
pub fn cpu_mask(prog: &Program, name: &str) -> Result<Vec<u32>> {
    let addr = prog.symbol(name)?;
    let size = prog
        .debug
        .symbol(name)
        .map(|s| s.size)
        .filter(|&s| s > 0 && s <= 1024)
        .unwrap_or(8);
    let bytes = prog.read_vec(addr, size as usize)?;
    Ok(bytes
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            (0..8)
                .filter(move |j| b & (1 << j) != 0)
                .map(move |j| (i * 8 + j) as u32)
        })
        .collect())
}

/// `current` of CPU `cpu`.
pub fn current_task(prog: &Program, cpu: u32) -> Result<VirtAddr> {
    let d = &prog.debug;
    let at = if let Ok(hot) = d.member("pcpu_hot", "current_task") {
        VirtAddr(prog.per_cpu("pcpu_hot", cpu)?.0 + hot.offset)
    } else if prog.debug.symbol("current_task").is_some() {
        prog.per_cpu("current_task", cpu)?
    } else {
        let curr = d.member("rq", "curr")?.offset;
        VirtAddr(prog.per_cpu("runqueues", cpu)?.0 + curr)
    };
    Ok(VirtAddr(prog.read_u64(at)?))
}

/// Gather the CPUs.
pub fn cpus(prog: &Program) -> Result<Cpus> {
    let d = &prog.debug;
    let possible = cpu_mask(prog, "__cpu_possible_mask")
        .or_else(|_| prog.cpus())
        .unwrap_or_default();
    let online = cpu_mask(prog, "__cpu_online_mask").unwrap_or_default();
    let pid = d.member("task_struct", "pid")?.offset;
    let comm = d.member("task_struct", "comm")?;
    let curr = d.member("rq", "curr").ok();
    let idle = d.member("rq", "idle").ok();
    let nr_running = d.member("rq", "nr_running").ok();
    let cpus = possible
        .iter()
        .filter(|&&c| prog.per_cpu("runqueues", c).is_ok())
        .map(|&cpu| {
            let rq = prog.per_cpu("runqueues", cpu).ok();
            let field = |m: &Option<crate::debuginfo::Member>| {
                let (rq, m) = (rq?, m.as_ref()?);
                prog.read_u64(VirtAddr(rq.0 + m.offset)).ok()
            };
            let task = current_task(prog, cpu).ok().filter(|t| t.0 != 0);
            let (rq_curr, rq_idle) = (field(&curr), field(&idle));
            let nr = rq
                .zip(nr_running.as_ref())
                .and_then(|(rq, m)| prog.read_u32(VirtAddr(rq.0 + m.offset)).ok());
            let pid = task.and_then(|t| prog.read_u32(VirtAddr(t.0 + pid)).ok().map(|p| p as i32));
            let comm = task.and_then(|t| {
                let raw = prog
                    .read_vec(VirtAddr(t.0 + comm.offset), comm.size as usize)
                    .ok()?;
                let n = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                Some(String::from_utf8_lossy(&raw[..n]).into_owned())
            });
            Cpu {
                cpu,
                online: online.contains(&cpu),
                task,
                pid,
                comm,
                idle: rq_curr.zip(rq_idle).map(|(c, i)| c == i),
                nr_running: nr,
            }
        })
        .collect();
    Ok(Cpus {
        present: cpu_mask(prog, "__cpu_present_mask").unwrap_or_default(),
        active: cpu_mask(prog, "__cpu_active_mask").unwrap_or_default(),
        possible,
        online,
        cpus,
    })
}
