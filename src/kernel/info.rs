//! `kpeek info`: what a dump is and what it holds, at a glance.

use serde::Serialize;

use super::program::Program;
use crate::addr::{LinkAddr, VirtAddr};
use crate::arch::KaslrMethod;
use crate::arch::Registers;
use crate::dump::DumpFormat;

/// One CPU as the dump recorded it.
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    /// CPU number.
    pub cpu: u32,
    /// Instruction pointer.
    pub pc: VirtAddr,
    /// `pc` as `function+0xoff/0xsize`, when it is in the kernel image.
    pub pc_symbol: Option<String>,
    /// Stack pointer.
    pub sp: VirtAddr,
    /// The CPU was in user mode.
    pub user_mode: bool,
    /// The task on this CPU (`rq->curr`): pid and comm.
    pub current: Option<(i32, String)>,
    /// The CPU that called `panic()`.
    pub panicked: bool,
    /// All general registers.
    pub registers: Registers,
}

/// The summary `kpeek info` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    /// The dump file, or the live target.
    pub dump: String,
    /// How a live target's memory is read (`null` for a dump): QEMU's
    /// process memory or its gdbstub, and why.
    pub memory: Option<String>,
    /// Its format (`null` for a live kernel).
    pub format: Option<DumpFormat>,
    /// Its page compression, for kdump-compressed dumps.
    pub compression: Option<String>,
    /// `OSRELEASE`, or the release from the banner.
    pub release: String,
    /// The kernel's banner (`linux_banner`), as found in the dump.
    pub banner: String,
    /// The vmlinux matched the dump (banner and, where present, build-id).
    pub vmlinux_matches: bool,
    /// The vmlinux file, or `None` when kpeek used only the dump.
    pub vmlinux: Option<String>,
    /// Where the vmlinux came from (given, found, debuginfod, none), when
    /// the command line knows (`null` inside GDB).
    pub vmlinux_origin: Option<crate::debuginfo::Origin>,
    /// Where the types came from: `dwarf` (the vmlinux) or `btf` (the
    /// vmlinux's `.BTF`, or the dump's own `__start_BTF..__stop_BTF`).
    pub types: crate::debuginfo::TypeSource,
    /// Where the symbols came from: `elf` (the vmlinux's `.symtab`) or
    /// `kallsyms` (the kernel's tables in the dump).
    pub symbols: crate::debuginfo::SymbolSource,
    /// The dump carries VMCOREINFO.
    pub vmcoreinfo: bool,
    /// Run-time minus link-time address of the kernel.
    pub kaslr_offset: String,
    /// How the offset was found.
    pub kaslr_method: KaslrMethod,
    /// `phys_base`.
    pub phys_base: String,
    /// The direct map's base.
    pub page_offset_base: String,
    /// Page size.
    pub page_size: u64,
    /// Paging levels (4 or 5).
    pub paging_levels: u8,
    /// Pages of RAM left out of the dump (filtered or excluded).
    pub excluded_pages: u64,
    /// The dump was cut short.
    pub incomplete: bool,
    /// `CRASHTIME`, for dumps of a kernel that crashed (seconds since the epoch).
    pub crash_time: Option<i64>,
    /// The CPU that panicked (`panic_cpu`), for a kernel that crashed.
    pub panic_cpu: Option<u32>,
    /// The task that called `panic()`: pid and comm.
    pub panic_task: Option<(i32, String)>,
    /// The panic message (`Kernel panic - not syncing: ...` in the log).
    pub panic_message: Option<String>,
    /// Time since boot at the dump, in nanoseconds (the timekeeper's
    /// monotonic clock plus time spent suspended, as `/proc/uptime`).
    pub uptime_ns: Option<u64>,
    /// The kernel command line (`saved_command_line`).
    pub cmdline: Option<String>,
    /// `tainted_mask`.
    pub taint_mask: Option<u64>,
    /// Its letters (`O`: an out-of-tree module was loaded, ...).
    pub taint: Option<String>,
    /// The load averages as `/proc/loadavg` prints them.
    pub load_average: Option<[String; 3]>,
    /// `MemTotal` in KiB (`totalram_pages`).
    pub mem_total_kb: Option<u64>,
    /// `MemFree` in KiB (`NR_FREE_PAGES`).
    pub mem_free_kb: Option<u64>,
    /// CPUs with their registers from the dump.
    pub cpus: Vec<CpuInfo>,
    /// Tasks in D state, when there are any (`kpeek hung`'s counts).
    pub hung: Option<super::hung::HungSummary>,
}

impl Info {
    /// Gather the summary.
    pub fn gather(prog: &Program) -> Info {
        let layout = &prog.located.layout;
        let vmcoreinfo = prog.notes.vmcoreinfo.as_ref();
        let crash_time = vmcoreinfo.and_then(|v| v.crash_time());
        let release = vmcoreinfo
            .and_then(|v| v.osrelease().map(str::to_owned))
            .unwrap_or_else(|| {
                prog.banner
                    .split_whitespace()
                    .nth(2)
                    .unwrap_or("")
                    .to_owned()
            });
        let health = prog.dump.as_ref().map(|d| d.health());
        let compression = health
            .as_ref()
            .and_then(|h| h.compression)
            .map(|c| format!("{c:?}").to_lowercase());
        let excluded_pages = health.as_ref().map_or(0, |h| h.excluded_pages);
        let incomplete = health.as_ref().is_some_and(|h| h.incomplete.is_some());
        let CpuStates {
            panic_cpu,
            currents,
            cpus,
        } = CpuStates::gather(prog);
        let panic_task = panic_cpu.and_then(|c| currents.get(c as usize).cloned().flatten());
        let panic_message = panic_cpu.and_then(|_| panic_message(prog));
        let taint_mask = prog
            .symbol("tainted_mask")
            .and_then(|a| prog.read_u64(a))
            .ok();
        let letters = super::modules::taint_letters(prog);
        Info {
            dump: prog
                .dump
                .as_ref()
                .map_or("live".to_owned(), |d| d.path.display().to_string()),
            memory: prog
                .dump
                .is_none()
                .then(|| prog.memory.describe())
                .flatten(),
            format: prog.dump.as_ref().map(|d| d.format),
            compression,
            release,
            banner: prog.banner.clone(),
            vmlinux_matches: true,
            vmlinux: match (prog.debug.type_source(), prog.debug.symbol_source()) {
                (crate::debuginfo::TypeSource::Btf, crate::debuginfo::SymbolSource::Kallsyms) => {
                    None
                }
                _ => Some(prog.debug.path().display().to_string()),
            },
            vmlinux_origin: None,
            types: prog.debug.type_source(),
            symbols: prog.debug.symbol_source(),
            vmcoreinfo: vmcoreinfo.is_some(),
            kaslr_offset: format!("{:#x}", layout.kaslr_offset),
            kaslr_method: prog.located.method,
            phys_base: signed_hex(layout.phys_base as i64),
            page_offset_base: format!("{:#x}", layout.page_offset_base),
            // x86_64's pages: a VMCOREINFO that says otherwise is refused
            // (the program's notices say so).
            page_size: 4096,
            paging_levels: layout.levels,
            excluded_pages,
            incomplete,
            crash_time,
            panic_cpu,
            panic_task,
            panic_message,
            uptime_ns: uptime_ns(prog),
            cmdline: prog
                .symbol("saved_command_line")
                .and_then(|a| prog.read_u64(a))
                .and_then(|p| read_cstr(prog, VirtAddr(p), 4096))
                .ok(),
            taint_mask,
            taint: taint_mask.map(|m| super::modules::taint_string(&letters, m, false)),
            load_average: load_average(prog),
            mem_total_kb: prog
                .symbol("_totalram_pages")
                .and_then(|a| prog.read_u64(a))
                .ok()
                .map(|pages| pages * 4),
            mem_free_kb: mem_free_kb(prog),
            cpus,
            hung: None,
        }
    }
}

/// The CPUs as the dump (or live target) recorded them, the panicking one,
/// and each CPU's `rq->curr`: the part of [`Info`] that unwinding needs,
/// without the log, taints and memory totals.
pub struct CpuStates {
    /// `panic_cpu`, for a kernel that crashed.
    pub panic_cpu: Option<u32>,
    /// `rq->curr` of each CPU: (pid, comm).
    pub currents: Vec<Option<(i32, String)>>,
    /// CPUs with their registers.
    pub cpus: Vec<CpuInfo>,
}

impl CpuStates {
    /// Read them.
    pub fn gather(prog: &Program) -> CpuStates {
        let crash_time = prog.notes.vmcoreinfo.as_ref().and_then(|v| v.crash_time());
        // panic() stores the panicking CPU in panic_cpu (-1 until then).
        let panic_cpu = prog
            .symbol("panic_cpu")
            .and_then(|a| prog.read_u32(a))
            .ok()
            .filter(|&c| c != u32::MAX && crash_time.is_some());
        let currents = current_tasks(prog);
        let notes = &prog.notes;
        let mut cpus = Vec::new();
        for (i, pr) in notes.prstatus.iter().enumerate() {
            // QEMU numbers its notes pr_pid = cpu + 1; kdump writes them in CPU order.
            let cpu = if crash_time.is_none() && pr.pid > 0 {
                pr.pid as u32 - 1
            } else {
                i as u32
            };
            let pc = VirtAddr(pr.regs.rip);
            cpus.push(CpuInfo {
                cpu,
                pc,
                pc_symbol: symbolize(prog, pc),
                sp: VirtAddr(pr.regs.rsp),
                user_mode: pr.regs.user_mode(),
                current: currents.get(cpu as usize).cloned().flatten(),
                panicked: panic_cpu == Some(cpu),
                registers: pr.regs,
            });
        }
        CpuStates {
            panic_cpu,
            currents,
            cpus,
        }
    }
}

/// A NUL-terminated string of at most `max` bytes.
pub fn read_cstr(prog: &Program, addr: VirtAddr, max: usize) -> crate::Result<String> {
    let mut out = Vec::new();
    let mut at = addr.0;
    while out.len() < max {
        // Up to the end of the page: the next one may not be mapped.
        let chunk = (((at | 0xfff) + 1 - at) as usize).min(max - out.len());
        let bytes = prog.read_vec(VirtAddr(at), chunk)?;
        if let Some(n) = bytes.iter().position(|&b| b == 0) {
            out.extend_from_slice(&bytes[..n]);
            break;
        }
        out.extend_from_slice(&bytes);
        at += chunk as u64;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The message of the last `Kernel panic - not syncing:` in the log.
fn panic_message(prog: &Program) -> Option<String> {
    const PREFIX: &str = "Kernel panic - not syncing: ";
    let log = super::printk::read_log(prog).ok()?;
    log.records()
        .filter_map(|r| {
            r.text
                .find(PREFIX)
                .map(|i| r.text[i + PREFIX.len()..].trim_end().to_owned())
        })
        .last()
}

/// `ktime_get_boottime()` as the timekeeper last updated it:
/// `tkr_mono.base + offs_boot`. `tk_core` is an anonymous struct whose
/// last member is the `struct timekeeper`.
fn uptime_ns(prog: &Program) -> Option<u64> {
    let d = &prog.debug;
    let (base, boot) = if d.symbol("tk_core").is_some() {
        let tk_size = d.type_size("timekeeper").ok()?;
        let sym = d.symbol("tk_core")?;
        let tk = prog.symbol("tk_core").ok()?.0 + sym.size.checked_sub(tk_size)?;
        (tk, tk)
    } else {
        return None;
    };
    // tkr_mono.base holds whole seconds (plus wall_to_monotonic's
    // nanoseconds); the rest is xtime_nsec, shifted.
    let field = |path: &str| d.member("timekeeper", path).ok().map(|m| m.offset);
    let mono = prog
        .read_u64(VirtAddr(base + field("tkr_mono.base")?))
        .ok()?;
    let xtime_nsec = prog
        .read_u64(VirtAddr(base + field("tkr_mono.xtime_nsec")?))
        .ok()?;
    let shift = prog
        .read_u32(VirtAddr(base + field("tkr_mono.shift")?))
        .ok()?;
    let mono = mono.wrapping_add(xtime_nsec.checked_shr(shift).unwrap_or(0));
    let offs = prog
        .read_u64(VirtAddr(
            boot + d.member("timekeeper", "offs_boot").ok()?.offset,
        ))
        .ok()?;
    Some(mono.wrapping_add(offs)).filter(|&t| (t as i64) > 0)
}

/// `avenrun[]` as `/proc/loadavg` prints it (`%lu.%02lu`, rounded).
fn load_average(prog: &Program) -> Option<[String; 3]> {
    const FSHIFT: u64 = 11;
    const FIXED_1: u64 = 1 << FSHIFT;
    let a = prog.symbol("avenrun").ok()?;
    let raw = prog.read_vec(a, 24).ok()?;
    let f = |i: usize| {
        let x =
            u64::from_le_bytes(raw[8 * i..8 * i + 8].try_into().unwrap_or([0; 8])) + FIXED_1 / 200;
        format!(
            "{}.{:02}",
            x >> FSHIFT,
            ((x & (FIXED_1 - 1)) * 100) >> FSHIFT
        )
    };
    Some([f(0), f(1), f(2)])
}

/// `global_zone_page_state(NR_FREE_PAGES)` in KiB.
fn mem_free_kb(prog: &Program) -> Option<u64> {
    let i = prog.debug.enumerator("NR_FREE_PAGES")?;
    let a = prog.symbol("vm_zone_stat").ok()?;
    let v = prog.read_u64(VirtAddr(a.0 + 8 * i as u64)).ok()? as i64;
    Some(v.max(0) as u64 * 4)
}

/// `phys_base` may be "negative": show it as the kernel's signed value.
fn signed_hex(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// `function+0xoff/0xsize` for a run-time address in the kernel image.
pub fn symbolize(prog: &Program, pc: VirtAddr) -> Option<String> {
    let l = &prog.located.layout;
    if pc.0 < l.image.0 .0 || pc.0 >= l.image.1 .0 {
        return None;
    }
    let (sym, off) = prog
        .debug
        .symbol_at(LinkAddr(pc.0.wrapping_sub(l.kaslr_offset)))?;
    Some(format!("{}+{:#x}/{:#x}", sym.name, off, sym.size))
}

/// `rq->curr` of each CPU: (pid, comm).
fn current_tasks(prog: &Program) -> Vec<Option<(i32, String)>> {
    let d = &prog.debug;
    let (Ok(curr), Ok(pid), Ok(comm)) = (
        d.member("rq", "curr"),
        d.member("task_struct", "pid"),
        d.member("task_struct", "comm"),
    ) else {
        return Vec::new();
    };
    let cpus = prog.cpus().unwrap_or_default();
    cpus.into_iter()
        .map(|cpu| {
            let rq = prog.per_cpu("runqueues", cpu).ok()?;
            let task = prog.read_u64(VirtAddr(rq.0 + curr.offset)).ok()?;
            let p = prog.read_u32(VirtAddr(task + pid.offset)).ok()? as i32;
            let c = prog.read_vec(VirtAddr(task + comm.offset), 16).ok()?;
            let n = c.iter().position(|&b| b == 0).unwrap_or(16);
            Some((p, String::from_utf8_lossy(&c[..n]).into_owned()))
        })
        .collect()
}
