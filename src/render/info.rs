//! `kpeek info` as text.

use std::io::{self, Write};

use super::escape;
use crate::kernel::info::Info;

/// Print the summary.
pub fn info(out: &mut dyn Write, i: &Info) -> io::Result<()> {
    // Every value may hold strings from the dump (release, banner, comm,
    // panic message, command line): escaped, as all human output is.
    let row = |out: &mut dyn Write, k: &str, v: &dyn std::fmt::Display| {
        writeln!(out, "{k:>16}: {}", escape(&v.to_string()))
    };
    row(out, "dump", &i.dump)?;
    if let Some(memory) = &i.memory {
        row(out, "memory", memory)?;
    }
    let kind = i.format.map_or("a live kernel", |f| f.describe());
    let format = match &i.compression {
        Some(c) => format!("{kind} ({c})"),
        None => kind.to_owned(),
    };
    row(out, "format", &format)?;
    row(out, "release", &i.release)?;
    row(out, "banner", &i.banner)?;
    match &i.vmlinux {
        Some(_) => row(
            out,
            "vmlinux",
            &if i.vmlinux_matches {
                "matches the dump"
            } else {
                "DOES NOT MATCH"
            },
        )?,
        None => row(
            out,
            "vmlinux",
            &"none: the kernel's own kallsyms and BTF, from its memory",
        )?,
    }
    if let Some(origin) = &i.vmlinux_origin {
        row(out, "vmlinux from", origin)?;
    }
    let types = match i.types {
        crate::debuginfo::TypeSource::Dwarf => "DWARF (the vmlinux)",
        crate::debuginfo::TypeSource::Btf if i.vmlinux.is_none() => {
            "BTF (the kernel's own, __start_BTF..__stop_BTF in its memory)"
        }
        crate::debuginfo::TypeSource::Btf => "BTF",
    };
    row(out, "types", &types)?;
    let symbols = match i.symbols {
        crate::debuginfo::SymbolSource::Elf => "ELF .symtab (the vmlinux)",
        crate::debuginfo::SymbolSource::Kallsyms => {
            "kallsyms (the kernel's own tables in its memory)"
        }
        crate::debuginfo::SymbolSource::None => "none",
    };
    row(out, "symbols", &symbols)?;
    row(out, "vmcoreinfo", &if i.vmcoreinfo { "yes" } else { "no" })?;
    row(
        out,
        "kaslr offset",
        &format!("{} (from {})", i.kaslr_offset, i.kaslr_method.describe()),
    )?;
    row(out, "phys_base", &i.phys_base)?;
    row(out, "direct map", &i.page_offset_base)?;
    row(
        out,
        "paging",
        &format!("{} levels, {}-byte pages", i.paging_levels, i.page_size),
    )?;
    row(out, "excluded pages", &i.excluded_pages)?;
    if i.incomplete {
        row(out, "incomplete", &"yes: the dump was cut short")?;
    }
    if let Some(t) = i.crash_time {
        row(out, "crash time", &format!("{t} (seconds since the epoch)"))?;
    }
    if let Some(c) = i.panic_cpu {
        row(out, "panic cpu", &c)?;
    }
    if let Some((pid, comm)) = &i.panic_task {
        row(out, "panic task", &format!("pid {pid} {comm}"))?;
    }
    if let Some(m) = &i.panic_message {
        row(out, "panic", m)?;
    }
    if let Some(ns) = i.uptime_ns {
        row(
            out,
            "uptime",
            &format!(
                "{}.{:02} s ({})",
                ns / 1_000_000_000,
                ns % 1_000_000_000 / 10_000_000,
                hms(ns / 1_000_000_000)
            ),
        )?;
    }
    if let Some(c) = &i.cmdline {
        row(out, "command line", c)?;
    }
    if let (Some(mask), Some(letters)) = (i.taint_mask, &i.taint) {
        let t = if mask == 0 {
            "not tainted".to_owned()
        } else {
            format!("{letters} ({mask:#x})")
        };
        row(out, "tainted", &t)?;
    }
    if let Some([a, b, c]) = &i.load_average {
        row(out, "load average", &format!("{a} {b} {c}"))?;
    }
    if let Some(t) = i.mem_total_kb {
        let free = i
            .mem_free_kb
            .map_or(String::new(), |f| format!(", {f} kB free"));
        row(out, "memory", &format!("{t} kB{free}"))?;
    }
    if let Some(h) = &i.hung {
        row(out, "hung", &super::hung::summary_line(h))?;
    }
    writeln!(out, "{:>16}:", "cpus")?;
    for c in &i.cpus {
        let pc = c.pc_symbol.clone().unwrap_or_else(|| {
            if c.user_mode {
                "(user)".into()
            } else {
                "?".into()
            }
        });
        let current = c
            .current
            .as_ref()
            .map_or(String::new(), |(p, n)| format!("  pid {p} {n}"));
        let panic = if c.panicked { "  <- panic" } else { "" };
        let line = format!(
            "{:>18} {:>3}  pc {} {pc}  sp {}{current}{panic}",
            "cpu", c.cpu, c.pc, c.sp
        );
        writeln!(out, "{}", escape(&line))?;
    }
    Ok(())
}

/// `1 day, 02:03:04`, or `02:03:04`.
fn hms(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match d {
        0 => format!("{h:02}:{m:02}:{s:02}"),
        1 => format!("1 day, {h:02}:{m:02}:{s:02}"),
        _ => format!("{d} days, {h:02}:{m:02}:{s:02}"),
    }
}

/// A classic hexdump: address, 16 bytes in hex, the printable ones as text.
pub fn hexdump(out: &mut (impl Write + ?Sized), start: u64, bytes: &[u8]) -> io::Result<()> {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        write!(out, "{:016x}:", start + 16 * i as u64)?;
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => write!(out, "{}{b:02x}", if j == 8 { "  " } else { " " })?,
                None => write!(out, "{}  ", if j == 8 { "  " } else { " " })?,
            }
        }
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "  {text}")?;
    }
    Ok(())
}
