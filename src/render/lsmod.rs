//! Loaded modules as text: `lsmod`, `/proc/modules`, the kernel's `lx-lsmod`.

use std::io::{self, Write};

use super::escape;
use crate::kernel::modules::Module;

/// The "used by" column of `/proc/modules`: `a,b,` (with `[permanent],`), or `-`.
fn proc_users(m: &Module) -> String {
    let mut s: String = m
        .used_by
        .iter()
        .map(|u| format!("{},", escape(u)))
        .collect();
    if m.permanent {
        s.push_str("[permanent],");
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Exactly `/proc/modules` (`m_show()` in kernel/module/procfs.c).
pub fn proc_modules(out: &mut (impl Write + ?Sized), mods: &[Module]) -> io::Result<()> {
    for m in mods.iter().filter(|m| m.state != "Unformed") {
        write!(out, "{} {}", escape(&m.name), m.size)?;
        match m.refcount {
            Some(r) => write!(out, " {r} {}", proc_users(m))?,
            None => write!(out, " - -")?,
        }
        write!(out, " {} {:#018x}", m.state, m.address.0)?;
        if !m.taints.is_empty() {
            write!(out, " ({})", m.taints)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Like `lsmod(8)`: `Module  Size  Used by`, with the module's address and state.
pub fn lsmod(out: &mut (impl Write + ?Sized), mods: &[Module]) -> io::Result<()> {
    writeln!(
        out,
        "Module                  Size  Used by                 State     Address             Taints"
    )?;
    for m in mods {
        let refs = m.refcount.map_or("-".to_owned(), |r| r.to_string());
        let users = if m.used_by.is_empty() {
            refs
        } else {
            format!("{refs} {}", escape(&m.used_by.join(",")))
        };
        writeln!(
            out,
            "{:<19} {:>8}  {users:<22}  {:<9} {:#018x}  {}",
            escape(&m.name),
            m.size,
            m.state,
            m.address.0,
            m.taints
        )?;
    }
    Ok(())
}

/// Exactly what the kernel's `lx-lsmod` prints (its size is the module's
/// core size: the init sections are not counted).
pub fn lx_lsmod(out: &mut (impl Write + ?Sized), mods: &[Module]) -> io::Result<()> {
    // lx-lsmod pads "Address" by 8 on 64-bit kernels.
    writeln!(
        out,
        "Address{}    Module                  Size  Used by",
        " ".repeat(8)
    )?;
    for m in mods {
        write!(
            out,
            "{:#x} {:<19} {:>8}  {}",
            m.address.0,
            escape(&m.name),
            m.core_size,
            m.refcount.unwrap_or(-1)
        )?;
        if !m.used_by.is_empty() {
            write!(out, " {}", escape(&m.used_by.join(",")))?;
        }
        writeln!(out)?;
    }
    Ok(())
}
