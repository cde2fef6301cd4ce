//! The ELF symbol table (`.symtab`) of a kernel image.
//!
//! A distro vmlinux has about 130,000 symbols and most commands look up a
//! few dozen by name: parsing reads the raw `Elf64_Sym` entries once into
//! one names buffer and an open-addressing name table; the address index
//! and the kallsyms view are sorted only when first asked for (symbol
//! names of addresses, backtraces).

use std::hash::Hasher;
use std::sync::OnceLock;

use object::elf;
use object::read::elf::{ElfFile64, Sym};
use object::{Object, ObjectSection};

use super::hash::FxHasher;
use crate::addr::LinkAddr;

/// One ELF symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The symbol's name.
    pub name: String,
    /// Its link-time address (before KASLR).
    pub addr: LinkAddr,
    /// Its size in bytes (0 when the symbol table does not say).
    pub size: u64,
}

/// A function, object or assembly label: in the address index.
const CODE_OR_DATA: u8 = 1;
/// What `nm` prints and `scripts/mksysmap` keeps: a kallsyms candidate.
const LISTED: u8 = 2;
/// `STB_WEAK`.
const WEAK: u8 = 4;

/// One symbol; its name is `names[name.0..name.1]`.
#[derive(Debug, Clone)]
struct Entry {
    name: (u32, u32),
    addr: u64,
    size: u64,
    flags: u8,
}

/// The first symbol of each name: an open-addressing table of (index into
/// the entries, high half of the name's Fx hash), so that a probe compares
/// names only when the hashes agree.
#[derive(Debug, Default)]
struct NameTable {
    /// `u32::MAX` as the index marks an empty slot; the length is a power
    /// of two.
    slots: Vec<(u32, u32)>,
}

fn name_hash(name: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(name);
    h.finish()
}

/// The symbols of one file, indexed by name and by address.
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    entries: Vec<Entry>,
    /// Every name, one after another.
    names: Vec<u8>,
    by_name: NameTable,
    /// Indexes of function and object symbols, sorted by address: built
    /// at the first use.
    by_addr: OnceLock<Vec<usize>>,
    percpu: Option<(u64, u64)>,
    /// The symbols the kernel's own kallsyms table holds (see
    /// [`SymbolTable::kallsyms_at`]), in kallsyms order: built at the first
    /// use (only backtraces need it) from the `LISTED` entries.
    kallsyms: OnceLock<Vec<usize>>,
    /// The kernel's own count of kallsyms symbols, from the image.
    num_syms: Option<u64>,
    /// Built from the kernel's kallsyms rather than an ELF `.symtab`.
    pub(crate) from_kallsyms: bool,
}

impl SymbolTable {
    /// Reads `.symtab` from an ELF image; an image without one (or one that
    /// does not parse) gives an empty table.
    pub(crate) fn parse(file: &[u8]) -> SymbolTable {
        let Ok(elf) = ElfFile64::<object::LittleEndian>::parse(file) else {
            return SymbolTable::default();
        };
        let endian = object::LittleEndian;
        let symtab = elf.elf_symbol_table();
        let strings = symtab.strings();
        let mut table = SymbolTable::default();
        table.entries.reserve(symtab.len());
        table.names.reserve(symtab.len() * 24);
        for sym in symtab.symbols() {
            let Ok(name) = strings.get(sym.st_name(endian)) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let kind = sym.st_type();
            let shndx = sym.st_shndx(endian);
            // In a section: not undefined, absolute, common or reserved
            // (SHN_XINDEX: the real index is elsewhere, but it is one).
            let in_section = shndx.index().is_some() || shndx == elf::SHN_XINDEX;
            // Functions and objects, plus untyped symbols in a section: the
            // kernel's assembly entry points (`SYM_CODE_START`, such as
            // `ret_from_fork` or `entry_SYSCALL_64`) are STT_NOTYPE.
            let code_or_data = match kind {
                elf::STT_FUNC | elf::STT_GNU_IFUNC | elf::STT_OBJECT | elf::STT_COMMON => {
                    shndx != elf::SHN_UNDEF
                }
                elf::STT_SECTION | elf::STT_FILE | elf::STT_TLS => false,
                _ => in_section,
            };
            // What `nm` prints and `scripts/mksysmap` keeps: defined,
            // non-absolute symbols that are not files or sections.
            let listed = !matches!(kind, elf::STT_FILE | elf::STT_SECTION) && in_section;
            let flags = u8::from(code_or_data) * CODE_OR_DATA
                + u8::from(listed) * LISTED
                + u8::from(sym.st_bind() == elf::STB_WEAK) * WEAK;
            // A common symbol's value is its alignment, not an address.
            let addr = if shndx == elf::SHN_COMMON {
                0
            } else {
                sym.st_value(endian)
            };
            table.push(name, addr, sym.st_size(endian), flags);
        }
        table.finish();
        table.num_syms = table
            .find("kallsyms_num_syms")
            .and_then(|i| read_u32(&elf, table.entries[i].addr));
        table
    }

    /// The kallsyms view. CONFIG_KALLSYMS_ALL keeps every symbol; without
    /// it only text. The kernel's own count (`kallsyms_num_syms`, in
    /// .rodata) says which: the view whose size is closer to it.
    fn kallsyms(&self) -> &[usize] {
        self.kallsyms.get_or_init(|| {
            let candidates: Vec<(usize, bool)> = (0..self.entries.len())
                .filter(|&i| self.entries[i].flags & LISTED != 0 && !kallsyms_ignores(self.name(i)))
                .map(|i| (i, self.entries[i].flags & WEAK != 0))
                .collect();
            let text_only = self.kallsyms_order(&candidates, false);
            let all = self.kallsyms_order(&candidates, true);
            match self.num_syms {
                Some(n) if n.abs_diff(all.len() as u64) < n.abs_diff(text_only.len() as u64) => all,
                _ => text_only,
            }
        })
    }

    /// Adds a symbol; returns its index.
    fn push(&mut self, name: &[u8], addr: u64, size: u64, flags: u8) -> usize {
        let idx = self.entries.len();
        let start = self.names.len();
        self.names.extend_from_slice(name);
        // Beyond 4 GiB of names or 4 billion symbols: not a kernel (the
        // name is then empty and cannot be found by name).
        let (start, end) = match (u32::try_from(start), u32::try_from(self.names.len())) {
            (Ok(s), Ok(e)) if u32::try_from(idx).is_ok_and(|i| i < u32::MAX) => (s, e),
            _ => (0, 0),
        };
        self.entries.push(Entry {
            name: (start, end),
            addr,
            size,
            flags,
        });
        idx
    }

    fn name(&self, idx: usize) -> &[u8] {
        let (a, b) = self.entries[idx].name;
        self.names.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// The index of the first symbol called `name`.
    fn find(&self, name: &str) -> Option<usize> {
        let slots = &self.by_name.slots;
        if slots.is_empty() {
            return None;
        }
        let name = name.as_bytes();
        let hash = name_hash(name);
        let mask = slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let (idx, high) = slots[at];
            if idx == u32::MAX {
                return None;
            }
            if high == (hash >> 32) as u32 && self.name(idx as usize) == name {
                return Some(idx as usize);
            }
            at = (at + 1) & mask;
        }
    }

    /// Indexes every name (the first symbol of a name wins: local symbols
    /// can repeat).
    fn index_names(&mut self) {
        let n = self.entries.len();
        let len = (n * 2).max(16).next_power_of_two();
        let mut slots = vec![(u32::MAX, 0u32); len];
        let mask = len - 1;
        for idx in 0..n {
            let name = self.name(idx);
            if name.is_empty() {
                continue;
            }
            let hash = name_hash(name);
            let high = (hash >> 32) as u32;
            let mut at = hash as usize & mask;
            loop {
                let (other, other_high) = slots[at];
                if other == u32::MAX {
                    slots[at] = (idx as u32, high);
                    break;
                }
                if other_high == high && self.name(other as usize) == name {
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        self.by_name.slots = slots;
    }

    /// Indexes the names and finds the per-CPU range.
    fn finish(&mut self) {
        self.index_names();
        let addr = |name: &str| self.find(name).map(|i| self.entries[i].addr);
        self.percpu = match (addr("__per_cpu_start"), addr("__per_cpu_end")) {
            (Some(0), Some(end)) => Some((0, end)),
            _ => None,
        };
    }

    /// The `CODE_OR_DATA` symbols by address, largest first, then in table
    /// order.
    fn by_addr(&self) -> &[usize] {
        self.by_addr.get_or_init(|| {
            let entries = &self.entries;
            let mut keys: Vec<(u64, std::cmp::Reverse<u64>, usize)> = (0..entries.len())
                .filter(|&i| entries[i].flags & CODE_OR_DATA != 0)
                .map(|i| (entries[i].addr, std::cmp::Reverse(entries[i].size), i))
                .collect();
            keys.sort_unstable();
            keys.into_iter().map(|k| k.2).collect()
        })
    }

    /// The kallsyms view of the symbol table, as `scripts/kallsyms` builds
    /// it without `--all-symbols`: symbols in `[_stext, _etext]` and
    /// `[_sinittext, _einittext]` plus every `__start_*`/`__stop_*`, sorted
    /// by address, then non-weak first, then symbols that look like
    /// linker-script boundaries last, then fewer leading underscores, then
    /// `nm -n` order (by name).
    fn kallsyms_order(&self, candidates: &[(usize, bool)], all_symbols: bool) -> Vec<usize> {
        let addr = |name: &str| self.find(name).map(|i| self.entries[i].addr);
        let ranges: Vec<(u64, u64, &str)> = [("_stext", "_etext"), ("_sinittext", "_einittext")]
            .iter()
            .filter_map(|&(s, e)| Some((addr(s)?, addr(e)?, e)))
            .collect();
        let mut kept: Vec<(usize, bool)> = candidates
            .iter()
            .copied()
            .filter(|&(i, _)| {
                let e = &self.entries[i];
                let name = self.name(i);
                if all_symbols || name.starts_with(b"__start_") || name.starts_with(b"__stop_") {
                    return true;
                }
                let inside = ranges
                    .iter()
                    .any(|&(s, end, _)| s <= e.addr && e.addr <= end);
                // scripts/kallsyms drops anything else sitting at _etext or
                // _einittext: such symbols may move between its two passes.
                let at_end = ranges
                    .iter()
                    .any(|&(_, end, n)| e.addr == end && name != n.as_bytes());
                inside && !at_end
            })
            .collect();
        let entries = &self.entries;
        kept.sort_by(|&(a, wa), &(b, wb)| {
            let (ea, eb) = (&entries[a], &entries[b]);
            let (na, nb) = (self.name(a), self.name(b));
            ea.addr
                .cmp(&eb.addr)
                .then(wa.cmp(&wb))
                .then(linker_provided(na).cmp(&linker_provided(nb)))
                .then(leading_underscores(na).cmp(&leading_underscores(nb)))
                .then(na.cmp(nb))
        });
        kept.into_iter().map(|(i, _)| i).collect()
    }

    /// What the kernel's `%pB` and `/proc/PID/stack` print for a code
    /// address: the kallsyms symbol at or before `addr`, the offset into it,
    /// and its size as kallsyms computes it (the distance to the next
    /// symbol at a higher address, so alignment padding counts). `None`
    /// outside the kernel's text.
    pub(crate) fn kallsyms_at(&self, addr: LinkAddr) -> Option<(Symbol, u64)> {
        let addr = addr.get();
        let list = self.kallsyms();
        let pos = list.partition_point(|&i| self.entries[i].addr <= addr);
        let last = pos.checked_sub(1)?;
        let start = self.entries[list[last]].addr;
        // The first of the symbols at this address, in kallsyms order.
        let first = list[..pos].partition_point(|&i| self.entries[i].addr < start);
        let end = list[pos..]
            .iter()
            .map(|&i| self.entries[i].addr)
            .find(|&a| a > start)
            .unwrap_or(start);
        let mut sym = self.symbol(list[first]);
        sym.size = end - start;
        Some((sym, addr - start))
    }

    /// A table from the kernel's own kallsyms: (name, link address), in
    /// the kernel's order. Kallsyms has no sizes: a symbol's size is taken
    /// as the distance to the next higher address (0 for the last), so
    /// `symbol_at` prefers the same symbols it would with an ELF table.
    /// Zero-based per-CPU symbols are kept out of the address index (they
    /// would shadow nothing useful and overlap low addresses).
    pub(crate) fn from_kallsyms(symbols: Vec<(String, u64)>) -> SymbolTable {
        let mut table = SymbolTable {
            from_kallsyms: true,
            ..SymbolTable::default()
        };
        let mut addrs: Vec<u64> = symbols.iter().map(|s| s.1).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let percpu_end = symbols
            .iter()
            .find(|s| s.0 == "__per_cpu_end")
            .map(|s| s.1)
            .filter(|_| symbols.iter().any(|s| s.0 == "__per_cpu_start" && s.1 == 0));
        for (name, addr) in symbols {
            let next = addrs.partition_point(|&a| a <= addr);
            let size = addrs.get(next).map_or(0, |&n| n - addr);
            // Every kallsyms symbol is listed (the view is set below).
            let flags = if percpu_end.is_none_or(|end| addr >= end) {
                CODE_OR_DATA | LISTED
            } else {
                LISTED
            };
            table.push(name.as_bytes(), addr, size, flags);
        }
        table.finish();
        // The table is kallsyms itself: its view is every symbol, by address.
        let mut view: Vec<usize> = (0..table.entries.len()).collect();
        view.sort_by_key(|&i| table.entries[i].addr);
        table.kallsyms = OnceLock::from(view);
        table
    }

    /// How many symbols there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn symbol(&self, idx: usize) -> Symbol {
        let e = &self.entries[idx];
        Symbol {
            name: String::from_utf8_lossy(self.name(idx)).into_owned(),
            addr: LinkAddr(e.addr),
            size: e.size,
        }
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<Symbol> {
        self.find(name).map(|i| self.symbol(i))
    }

    /// The nearest function, object or assembly-label symbol at or before
    /// `addr`.
    pub(crate) fn at(&self, addr: LinkAddr) -> Option<(Symbol, u64)> {
        let addr = addr.get();
        let by_addr = self.by_addr();
        let pos = by_addr.partition_point(|&i| self.entries[i].addr <= addr);
        let idx = *by_addr.get(pos.checked_sub(1)?)?;
        let start = self.entries[idx].addr;
        // Among several symbols at the same address, prefer the first one
        // (sorted largest first) that is not a zero-sized marker.
        let first = by_addr[..pos].partition_point(|&i| self.entries[i].addr < start);
        let best = by_addr[first..pos]
            .iter()
            .copied()
            .find(|&i| self.entries[i].size != 0)
            .unwrap_or(idx);
        Some((self.symbol(best), addr - start))
    }

    pub(crate) fn is_percpu(&self, name: &str) -> bool {
        let Some((start, end)) = self.percpu else {
            return false;
        };
        match self.find(name) {
            Some(i) => {
                let a = self.entries[i].addr;
                start <= a && a < end
            }
            None => false,
        }
    }
}

/// A `u32` at a link address of an allocated section of the image.
fn read_u32(elf: &ElfFile64<'_, object::LittleEndian>, addr: u64) -> Option<u64> {
    elf.sections().find_map(|s| {
        let start = s.address();
        if addr < start || addr + 4 > start + s.size() {
            return None;
        }
        let data = s.data().ok()?;
        let off = usize::try_from(addr - start).ok()?;
        let b = data.get(off..off + 4)?;
        Some(u64::from(u32::from_le_bytes(b.try_into().ok()?)))
    })
}

/// Names `scripts/mksysmap` and `scripts/kallsyms` leave out of kallsyms.
fn kallsyms_ignores(name: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 8] = [
        b"$",
        b".L",
        b"__efistub_",
        b"__pi_",
        b"__kcfi_typeid_",
        b"__crc_",
        b"__kstrtab_",
        b"__kstrtabns_",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || name.windows(6).any(|w| w == b"Thunk_")
        || name == b"L0"
        || name.ends_with(b"_veneer")
}

/// `scripts/kallsyms`' guess that a symbol marks a linker-script boundary.
fn linker_provided(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"__") else {
        return false;
    };
    name.len() >= 8
        && (rest.starts_with(b"start_")
            || rest.starts_with(b"stop_")
            || rest.starts_with(b"end_")
            || name.ends_with(b"_start")
            || name.ends_with(b"_end"))
}

fn leading_underscores(name: &[u8]) -> usize {
    name.iter().take_while(|&&b| b == b'_').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(syms: &[(&str, u64, u64)]) -> SymbolTable {
        let mut t = SymbolTable::default();
        for &(name, addr, size) in syms {
            t.push(name.as_bytes(), addr, size, CODE_OR_DATA);
        }
        t.finish();
        t.percpu = None;
        t
    }

    #[test]
    fn nearest_preceding_symbol() {
        let t = table(&[("a", 0x1000, 0x10), ("b", 0x1010, 0x20), ("c", 0x2000, 0)]);
        let (s, off) = t.at(LinkAddr(0x1018)).unwrap();
        assert_eq!((s.name.as_str(), off), ("b", 8));
        assert_eq!(t.at(LinkAddr(0x1000)).unwrap().0.name, "a");
        assert!(t.at(LinkAddr(0xfff)).is_none());
        assert_eq!(
            t.at(LinkAddr(0x3000)).unwrap(),
            (t.by_name("c").unwrap(), 0x1000)
        );
    }

    #[test]
    fn sized_symbol_wins_over_marker_at_same_address() {
        let t = table(&[("_stext", 0x1000, 0), ("startup_64", 0x1000, 0x40)]);
        assert_eq!(t.at(LinkAddr(0x1004)).unwrap().0.name, "startup_64");
    }

    #[test]
    fn from_kallsyms_sizes_and_percpu() {
        let t = SymbolTable::from_kallsyms(vec![
            ("__per_cpu_start".into(), 0),
            ("runqueues".into(), 0x2000),
            ("__per_cpu_end".into(), 0x30000),
            ("_text".into(), 0xffff_ffff_8100_0000),
            ("startup_64".into(), 0xffff_ffff_8100_0000),
            ("f".into(), 0xffff_ffff_8100_0040),
        ]);
        assert!(t.from_kallsyms);
        assert!(t.is_percpu("runqueues"));
        assert!(!t.is_percpu("f"));
        assert_eq!(t.by_name("startup_64").unwrap().size, 0x40);
        let (s, off) = t.at(LinkAddr(0xffff_ffff_8100_0044)).unwrap();
        assert_eq!((s.name.as_str(), off), ("f", 4));
        // Per-CPU offsets are not addresses.
        assert!(t.at(LinkAddr(0x2004)).is_none());
    }

    #[test]
    fn percpu_range() {
        let mut t = table(&[
            ("__per_cpu_start", 0, 0),
            ("runqueues", 0x2000, 0x1000),
            ("__per_cpu_end", 0x30000, 0),
            ("jiffies", 0xffff_ffff_8200_0000, 8),
        ]);
        t.percpu = Some((0, 0x30000));
        assert!(t.is_percpu("runqueues"));
        assert!(!t.is_percpu("jiffies"));
        assert!(!t.is_percpu("nonexistent"));
    }
}
