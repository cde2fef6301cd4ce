//! Loaded modules: the `modules` list, as `/proc/modules` shows it.

use serde::Serialize;

use super::program::Program;
use super::task::{list_for_each, Warning};
use crate::addr::VirtAddr;
use crate::Result;

/// One loaded module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Module {
    /// `struct module` address.
    pub module: VirtAddr,
    /// `mod->name`.
    pub name: String,
    /// Bytes of memory, as `/proc/modules` counts them.
    pub size: u64,
    /// Bytes of its core (not init) memory, as the kernel's `lx-lsmod` counts them.
    pub core_size: u64,
    /// `module_refcount()`: `refcnt` minus the base reference; `None`
    /// without `CONFIG_MODULE_UNLOAD`.
    pub refcount: Option<i64>,
    /// The modules that use this one (`source_list`).
    pub used_by: Vec<String>,
    /// It has an init but no exit: it can never be unloaded.
    pub permanent: bool,
    /// `Live`, `Loading`, `Unloading` (or `Unformed`).
    pub state: String,
    /// Where its text starts.
    pub address: VirtAddr,
    /// Its taint letters (`O` out of tree, `E` unsigned, ...).
    pub taints: String,
    /// Its ELF sections' run-time addresses (`mod->sect_attrs`, what
    /// `/sys/module/NAME/sections/` shows), in the module's order: what
    /// GDB's `add-symbol-file` needs. Empty when the kernel keeps none
    /// (no `CONFIG_KALLSYMS`/`CONFIG_SYSFS`) or its layout is unknown.
    pub sections: Vec<Section>,
}

/// One section of a loaded module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Section {
    /// `.text`, `.data`, `.bss`, ...
    pub name: String,
    /// Where it was loaded.
    pub address: VirtAddr,
}

/// The module list with what went wrong on the way.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModuleList {
    /// Modules in list order (newest first, as `/proc/modules`).
    pub modules: Vec<Module>,
    /// Problems met on the way.
    pub warnings: Vec<Warning>,
}

/// The kernel's taint letters (`taint_flags[]`): (letter, applies to modules).
pub fn taint_letters(prog: &Program) -> Vec<(char, bool)> {
    let d = &prog.debug;
    let (Ok(size), Ok(c_true), Ok(module), Some(sym)) = (
        d.type_size("taint_flag"),
        d.member("taint_flag", "c_true"),
        d.member("taint_flag", "module"),
        prog.debug.symbol("taint_flags"),
    ) else {
        return Vec::new();
    };
    let n = sym.size.checked_div(size).unwrap_or(0);
    let Ok(addr) = prog.symbol("taint_flags") else {
        return Vec::new();
    };
    let Ok(bytes) = prog.read_vec(addr, (n * size) as usize) else {
        return Vec::new();
    };
    bytes
        .chunks_exact(size as usize)
        .map(|f| {
            (
                f[c_true.offset as usize] as char,
                f[module.offset as usize] != 0,
            )
        })
        .collect()
}

/// The letters of the bits set in a taint mask.
pub fn taint_string(letters: &[(char, bool)], mask: u64, modules_only: bool) -> String {
    letters
        .iter()
        .enumerate()
        .filter(|(i, (_, m))| *i < 64 && mask & (1 << i) != 0 && (*m || !modules_only))
        .map(|(_, (c, _))| *c)
        .collect()
}

/// Walk the `modules` list.
pub fn for_each_module(prog: &Program) -> Result<ModuleList> {
    let d = &prog.debug;
    let state = d.member("module", "state")?;
    let refcnt = d.member("module", "refcnt").ok();
    let taints = d.member("module", "taints").ok();
    let sources = d.member("module", "source_list").ok();
    let init = d.member("module", "init").ok();
    let exit = d.member("module", "exit").ok();
    let use_source_list = d.member("module_use", "source_list").ok();
    let use_source = d.member("module_use", "source").ok();
    let letters = taint_letters(prog);
    let size = Sizes::new(prog)?;
    let live = d.enumerator("MODULE_STATE_LIVE").unwrap_or(0);
    let coming = d.enumerator("MODULE_STATE_COMING").unwrap_or(1);
    let going = d.enumerator("MODULE_STATE_GOING").unwrap_or(2);
    let unformed = d.enumerator("MODULE_STATE_UNFORMED").unwrap_or(3);

    let sect = SectAttrs::new(prog);
    let (modules, warning) = module_addresses(prog)?;
    let mut out = ModuleList::default();
    out.warnings.extend(warning);
    for m in modules {
        let mut link_warnings = Vec::new();
        let mut read = || -> Result<Module> {
            let module_name = read_name(prog, m)?;
            let st = i64::from(prog.read_u32(VirtAddr(m.0 + state.offset))? as i32);
            let refcount = match &refcnt {
                Some(r) => Some(i64::from(prog.read_u32(VirtAddr(m.0 + r.offset))? as i32) - 1),
                None => None,
            };
            let mut used_by = Vec::new();
            if let (Some(s), Some(usl), Some(us)) = (&sources, &use_source_list, &use_source) {
                let (uses, w) = list_for_each(prog, VirtAddr(m.0 + s.offset));
                link_warnings.extend(w);
                for u in uses.into_iter().take(4096) {
                    let src = prog.read_u64(VirtAddr(u.0 - usl.offset + us.offset))?;
                    used_by.push(read_name(prog, VirtAddr(src))?);
                }
            }
            let permanent = match (&init, &exit) {
                (Some(i), Some(e)) => {
                    prog.read_u64(VirtAddr(m.0 + i.offset))? != 0
                        && prog.read_u64(VirtAddr(m.0 + e.offset))? == 0
                }
                _ => false,
            };
            let tmask = match &taints {
                Some(t) => prog.read_u64(VirtAddr(m.0 + t.offset))?,
                None => 0,
            };
            let mut taint = taint_string(&letters, tmask, true);
            if st == coming {
                taint.push('+');
            }
            if st == going {
                taint.push('-');
            }
            let (size, core_size, address) = size.of(prog, m)?;
            let sections = match &sect {
                Some(sect) => sect.of(prog, m)?,
                None => Vec::new(),
            };
            Ok(Module {
                module: m,
                name: module_name,
                size,
                core_size,
                refcount,
                used_by,
                permanent,
                state: match st {
                    s if s == live => "Live",
                    s if s == coming => "Loading",
                    s if s == going => "Unloading",
                    s if s == unformed => "Unformed",
                    _ => "?",
                }
                .to_owned(),
                address,
                taints: taint,
                sections,
            })
        };
        let result = read();
        out.warnings.append(&mut link_warnings);
        match result {
            Ok(module) => out.modules.push(module),
            Err(e) => out.warnings.push(Warning {
                code: "unreadable_module",
                message: format!("module at {m}: {e}"),
                address: Some(m),
            }),
        }
    }
    Ok(out)
}

/// The `struct module` of every module on the `modules` list, in list
/// order, and what stopped the walk if it broke.
pub(crate) fn module_addresses(prog: &Program) -> Result<(Vec<VirtAddr>, Option<Warning>)> {
    let head = prog.symbol("modules")?;
    let list = prog.debug.member("module", "list")?.offset;
    let (links, warning) = list_for_each(prog, head);
    let modules = links
        .into_iter()
        .map(|l| VirtAddr(l.0.wrapping_sub(list)))
        .collect();
    Ok((modules, warning))
}

/// Where `mod->sect_attrs` keeps each section's name and address: an
/// array of `struct module_sect_attr` after `nsections`, the name in
/// `battr.attr.name` (Linux 5.8 and later) or `name` (before).
struct SectAttrs {
    sect_attrs: u64,
    nsections: u64,
    attrs: u64,
    elem: u64,
    name: u64,
    address: u64,
}

/// More sections than any module has.
const MAX_SECTIONS: u32 = 1024;

impl SectAttrs {
    fn new(prog: &Program) -> Option<SectAttrs> {
        let d = &prog.debug;
        Some(SectAttrs {
            sect_attrs: d.member("module", "sect_attrs").ok()?.offset,
            nsections: d.member("module_sect_attrs", "nsections").ok()?.offset,
            attrs: d.member("module_sect_attrs", "attrs").ok()?.offset,
            elem: d.type_size("module_sect_attr").ok().filter(|&s| s > 0)?,
            name: d
                .member("module_sect_attr", "battr.attr.name")
                .or_else(|_| d.member("module_sect_attr", "name"))
                .ok()?
                .offset,
            address: d.member("module_sect_attr", "address").ok()?.offset,
        })
    }

    /// The sections of the module at `m`.
    fn of(&self, prog: &Program, m: VirtAddr) -> Result<Vec<Section>> {
        let at = prog.read_u64(VirtAddr(m.0 + self.sect_attrs))?;
        if at == 0 {
            return Ok(Vec::new());
        }
        let n = prog.read_u32(VirtAddr(at + self.nsections))?;
        if n > MAX_SECTIONS {
            return Err(crate::Error::Corrupt(format!(
                "module at {m}: {n} sections in its sect_attrs"
            )));
        }
        (0..u64::from(n))
            .map(|i| {
                let attr = at + self.attrs + i * self.elem;
                let name = prog.read_u64(VirtAddr(attr + self.name))?;
                Ok(Section {
                    name: super::info::read_cstr(prog, VirtAddr(name), 64)?,
                    address: VirtAddr(prog.read_u64(VirtAddr(attr + self.address))?),
                })
            })
            .collect()
    }
}

/// `mod->name` of the module at `m`.
pub(crate) fn read_name(prog: &Program, m: VirtAddr) -> Result<String> {
    let name = prog.debug.member("module", "name")?;
    let raw = prog.read_vec(VirtAddr(m.0 + name.offset), name.size.min(64) as usize)?;
    let n = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Ok(String::from_utf8_lossy(&raw[..n]).into_owned())
}

/// How a module's size and text address are found: `mem[]` (6.4+) or the
/// `core_layout`/`init_layout` pair before it.
enum Sizes {
    /// `mem[i].size` for each memory type, `mem[MOD_TEXT].base`.
    Mem {
        sizes: Vec<u64>,
        text_base: u64,
        /// The first init type (`MOD_INIT_TEXT`): the core ones come before.
        first_init: usize,
    },
    /// `core_layout.size + init_layout.size (+ data_layout.size)`, `core_layout.base`.
    Layouts { sizes: Vec<u64>, base: u64 },
}

impl Sizes {
    fn new(prog: &Program) -> Result<Sizes> {
        let d = &prog.debug;
        if let Ok(mem) = d.member("module", "mem") {
            let elem = d.type_size("module_memory")?;
            let n = mem.size.checked_div(elem).unwrap_or(0);
            let size = d.member("module_memory", "size")?.offset;
            let base = d.member("module_memory", "base")?.offset;
            let text = d.enumerator("MOD_TEXT").unwrap_or(0) as u64;
            return Ok(Sizes::Mem {
                sizes: (0..n).map(|i| mem.offset + i * elem + size).collect(),
                text_base: mem.offset + text * elem + base,
                first_init: d.enumerator("MOD_INIT_TEXT").unwrap_or(4) as usize,
            });
        }
        let mut sizes = vec![
            d.member("module", "core_layout.size")?.offset,
            d.member("module", "init_layout.size")?.offset,
        ];
        if let Ok(data) = d.member("module", "data_layout.size") {
            sizes.push(data.offset);
        }
        Ok(Sizes::Layouts {
            sizes,
            base: d.member("module", "core_layout.base")?.offset,
        })
    }

    /// (size, core size, text address) of the module at `m`.
    fn of(&self, prog: &Program, m: VirtAddr) -> Result<(u64, u64, VirtAddr)> {
        // core_layout comes first in `Layouts`.
        let (sizes, base, core) = match self {
            Sizes::Mem {
                sizes,
                text_base,
                first_init,
            } => (sizes, text_base, *first_init),
            Sizes::Layouts { sizes, base } => (sizes, base, 1),
        };
        let (mut total, mut core_total) = (0u64, 0u64);
        for (i, off) in sizes.iter().enumerate() {
            let s = u64::from(prog.read_u32(VirtAddr(m.0 + off))?);
            total += s;
            if i < core {
                core_total += s;
            }
        }
        let address = VirtAddr(prog.read_u64(VirtAddr(m.0 + base))?);
        Ok((total, core_total, address))
    }
}
