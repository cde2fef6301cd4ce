//! CPUs as text: kpeek's table and the kernel's `lx-cpus`.

use std::io::{self, Write};

use super::escape;
use crate::kernel::cpus::Cpus;

/// Python's `str(list)` of CPU numbers: `[0, 1]`.
fn py_list(v: &[u32]) -> String {
    let items: Vec<String> = v.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Exactly what the kernel's `lx-cpus` prints.
pub fn lx_cpus(out: &mut (impl Write + ?Sized), c: &Cpus) -> io::Result<()> {
    writeln!(out, "Possible CPUs : {}", py_list(&c.possible))?;
    writeln!(out, "Present CPUs  : {}", py_list(&c.present))?;
    writeln!(out, "Online CPUs   : {}", py_list(&c.online))?;
    writeln!(out, "Active CPUs   : {}", py_list(&c.active))
}

/// One row per CPU: online, idle, runqueue length, current task.
pub fn table(out: &mut (impl Write + ?Sized), c: &Cpus) -> io::Result<()> {
    writeln!(
        out,
        "CPU  ONLINE  IDLE  NR_RUNNING  TASK                    PID  COMM"
    )?;
    for cpu in &c.cpus {
        let yn = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        writeln!(
            out,
            "{:>3}  {:<6}  {:<4}  {:>10}  {:<18}  {:>5}  {}",
            cpu.cpu,
            yn(Some(cpu.online)),
            yn(cpu.idle),
            cpu.nr_running.map_or("?".to_owned(), |n| n.to_string()),
            cpu.task
                .map_or("?".to_owned(), |t| format!("{:#018x}", t.0)),
            cpu.pid.map_or("?".to_owned(), |p| p.to_string()),
            cpu.comm
                .as_deref()
                .map_or(std::borrow::Cow::Borrowed("?"), escape)
        )?;
    }
    Ok(())
}
