//! Where the unwinder's tables come from: the kernel's ORC tables (from the
//! vmlinux, or from the dump when the file lacks them) and each loaded
//! module's ORC and symbols, read from the dump.

use super::Unwinder;
use crate::addr::VirtAddr;
use std::borrow::Cow;

use crate::arch::orc::{OrcFormat, OrcTable, OrcVersion};
use crate::error::{Error, Result};
use crate::kernel::program::{read_kernel, Program};

/// One loaded module's code, as the unwinder needs it.
#[derive(Debug)]
pub(super) struct ModuleCode {
    pub(super) name: String,
    /// Run-time text range.
    pub(super) text: (u64, u64),
    pub(super) orc: OrcTable,
    /// `mod->kallsyms`: the symbols' values and name addresses, by value.
    pub(super) symbols: Vec<(u64, u64)>,
    /// The symbols with a size (functions and objects: the module's data
    /// too): value, size and name address, by value.
    pub(super) sized: Vec<(u64, u64, u64)>,
}

/// ORC tables not parsed yet: the run-time address of the first ip, the
/// ips, the entries.
pub(super) type RawOrc = (u64, Cow<'static, [u8]>, Cow<'static, [u8]>);

impl Unwinder<'_> {
    /// The ORC layout in use.
    pub fn version(&self) -> OrcVersion {
        self.format.layout
    }

    /// The ORC format in use: layout and register numbering.
    pub fn format(&self) -> OrcFormat {
        self.format
    }

    /// The built-in ORC tables from the dump (`__start_orc_unwind_ip` ..):
    /// the address of the first ip, the ips and the entries, still raw (the
    /// format is detected from them).
    pub(super) fn orc_from_memory(prog: &Program) -> Result<RawOrc> {
        let ip_start = prog.symbol("__start_orc_unwind_ip")?;
        let ip_stop = prog.symbol("__stop_orc_unwind_ip")?;
        let orc_start = prog.symbol("__start_orc_unwind")?;
        let n = ip_stop.0.saturating_sub(ip_start.0) / 4;
        if n == 0 || n > 16 << 20 {
            return Err(Error::Corrupt(format!("{n} ORC entries")));
        }
        let ips = prog.read_vec(ip_start, 4 * n as usize)?;
        let orcs = prog.read_vec(orc_start, 6 * n as usize)?;
        Ok((ip_start.0, ips.into(), orcs.into()))
    }

    /// Every module on the `modules` list with its text range, ORC table
    /// and symbols.
    pub(super) fn modules(
        prog: &Program,
        format: OrcFormat,
    ) -> Result<(Vec<ModuleCode>, Vec<String>)> {
        let d = &prog.debug;
        let kallsyms = d.member("module", "kallsyms")?.offset;
        let (symtab, num_symtab) = (
            d.member("mod_kallsyms", "symtab")?.offset,
            d.member("mod_kallsyms", "num_symtab")?.offset,
        );
        // 6.4+: mem[MOD_TEXT] {base, size}; before: core_layout {base, text_size}.
        let (base, size, size_is_u32) = if d.has_member("module", "mem") {
            let mem = d.member("module", "mem")?.offset;
            let b = d.member("module_memory", "base")?.offset;
            let s = d.member("module_memory", "size")?;
            (mem + b, mem + s.offset, s.size == 4)
        } else {
            let l = d.member("module", "core_layout")?.offset;
            let b = d.member("module_layout", "base")?.offset;
            let s = d.member("module_layout", "text_size")?;
            (l + b, l + s.offset, s.size == 4)
        };
        let orc_member = |m: &str| d.member("module", &format!("arch.{m}")).map(|m| m.offset);
        let orc_fields = (
            orc_member("num_orcs"),
            orc_member("orc_unwind_ip"),
            orc_member("orc_unwind"),
        );
        let (addresses, warning) = crate::kernel::modules::module_addresses(prog)?;
        let mut notices: Vec<String> = warning.map(|w| w.message).into_iter().collect();
        let mut modules = Vec::new();
        for VirtAddr(m) in addresses {
            let read = |off: u64| prog.read_u64(VirtAddr(m.wrapping_add(off)));
            let one = || -> Result<ModuleCode> {
                let name = crate::kernel::modules::read_name(prog, VirtAddr(m))?;
                let start = read(base)?;
                let len = if size_is_u32 {
                    u64::from(prog.read_u32(VirtAddr(m + size))?)
                } else {
                    read(size)?
                };
                let orc = match orc_fields {
                    (Ok(num), Ok(ips), Ok(orcs)) => {
                        let n = u64::from(prog.read_u32(VirtAddr(m + num))?);
                        let ip_base = read(ips)?;
                        if n == 0 || n > 1 << 22 {
                            OrcTable::default()
                        } else {
                            let mut ipb = vec![0u8; 4 * n as usize];
                            read_kernel(prog, VirtAddr(ip_base), &mut ipb)?;
                            let mut ob = vec![0u8; 6 * n as usize];
                            read_kernel(prog, VirtAddr(read(orcs)?), &mut ob)?;
                            OrcTable::parse(ip_base, &ipb, &ob, format)?
                        }
                    }
                    _ => OrcTable::default(),
                };
                let ks = read(kallsyms)?;
                let count = u64::from(prog.read_u32(VirtAddr(ks + num_symtab))?).min(1 << 20);
                let table = prog.read_u64(VirtAddr(ks + symtab))?;
                let mut raw = vec![0u8; 24 * count as usize];
                read_kernel(prog, VirtAddr(table), &mut raw)?;
                let strtab =
                    prog.read_u64(VirtAddr(ks + d.member("mod_kallsyms", "strtab")?.offset))?;
                let mut symbols: Vec<(u64, u64)> = raw
                    .chunks_exact(24)
                    .skip(1)
                    .filter_map(|s| {
                        let st_name = u32::from_le_bytes(s[0..4].try_into().ok()?);
                        let shndx = u16::from_le_bytes(s[6..8].try_into().ok()?);
                        let value = u64::from_le_bytes(s[8..16].try_into().ok()?);
                        (shndx != 0 && st_name != 0)
                            .then_some((value, strtab.wrapping_add(u64::from(st_name))))
                    })
                    .collect();
                symbols.sort_unstable();
                let mut sized: Vec<(u64, u64, u64)> = raw
                    .chunks_exact(24)
                    .skip(1)
                    .filter_map(|s| {
                        let st_name = u32::from_le_bytes(s[0..4].try_into().ok()?);
                        let shndx = u16::from_le_bytes(s[6..8].try_into().ok()?);
                        let value = u64::from_le_bytes(s[8..16].try_into().ok()?);
                        let size = u64::from_le_bytes(s[16..24].try_into().ok()?);
                        (shndx != 0 && st_name != 0 && size != 0).then_some((
                            value,
                            size,
                            strtab.wrapping_add(u64::from(st_name)),
                        ))
                    })
                    .collect();
                sized.sort_unstable();
                Ok(ModuleCode {
                    name,
                    text: (start, start.saturating_add(len)),
                    orc,
                    symbols,
                    sized,
                })
            };
            match one() {
                Ok(code) => modules.push(code),
                Err(e) => notices.push(format!("module at {m:#x}: {e}")),
            }
        }
        Ok((modules, notices))
    }
}
