//! The name index of `.debug_info`: which unit defines each named type
//! first, built lazily one unit at a time and, past a budget, in parallel
//! over the rest; persisted per build ID by [`super::cache`].

use std::sync::{Arc, OnceLock};

use gimli::constants as dw;
use gimli::{AttributeValue, DebugInfoOffset, Reader, UnitOffset};

use super::hash::{FirstMap, FxMap};
use super::types::{Kind, TypeId};
use super::{dwarf_err, Dw, KernelDebugInfo, R};
use crate::error::{Error, Result};

/// One compilation unit's header facts.
#[derive(Debug)]
pub(crate) struct UnitInfo {
    /// Offset of the unit header in `.debug_info`.
    pub(crate) offset: u64,
    /// Offset one past the unit's last byte.
    pub(crate) end: u64,
    abbrevs: OnceLock<std::result::Result<Arc<gimli::Abbreviations>, String>>,
    str_offsets_base: OnceLock<u64>,
}

impl UnitInfo {
    pub(crate) fn list(di: &KernelDebugInfo) -> Result<Vec<UnitInfo>> {
        let dw = di.dw()?;
        let mut units = Vec::new();
        let mut iter = dw.info.units();
        loop {
            let at = units.last().map_or(0, |u: &UnitInfo| u.end);
            let header = match iter.next() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                // A damaged unit header hides the units after it; keep the
                // ones before (the walk is best-effort).
                Err(e) if units.is_empty() => return Err(dwarf_err(e, at)),
                Err(_) => break,
            };
            let offset = header.offset().0 as u64;
            units.push(UnitInfo::new(
                offset,
                offset + header.length_including_self() as u64,
            ));
        }
        Ok(units)
    }

    pub(crate) fn new(offset: u64, end: u64) -> UnitInfo {
        UnitInfo {
            offset,
            end,
            abbrevs: OnceLock::new(),
            str_offsets_base: OnceLock::new(),
        }
    }
}

/// A unit ready for reading entries.
pub(crate) struct UnitCtx<'a> {
    pub(crate) dw: Dw<'a>,
    pub(crate) info: &'a UnitInfo,
    pub(crate) header: gimli::UnitHeader<R<'a>>,
    pub(crate) abbrevs: Arc<gimli::Abbreviations>,
}

impl<'a> UnitCtx<'a> {
    /// A unit read once, in a scan over all of them: its abbreviations are
    /// parsed for this read and dropped after it (kept, they would add up
    /// to tens of MB over the thousands of units of a distro vmlinux),
    /// unless a lookup cached them already.
    pub(crate) fn scan(dw: Dw<'a>, info: &'a UnitInfo) -> Result<UnitCtx<'a>> {
        if info.abbrevs.get().is_some() {
            return UnitCtx::new(dw, info);
        }
        let header = dw
            .info
            .header_from_offset(DebugInfoOffset(info.offset as usize))
            .map_err(|e| dwarf_err(e, info.offset))?;
        let abbrevs = header
            .abbreviations(&dw.abbrev)
            .map(Arc::new)
            .map_err(|e| Error::BadDwarf {
                what: format!("{e} in the abbreviations of unit {:#x}", info.offset),
            })?;
        Ok(UnitCtx {
            dw,
            info,
            header,
            abbrevs,
        })
    }

    pub(crate) fn new(dw: Dw<'a>, info: &'a UnitInfo) -> Result<UnitCtx<'a>> {
        let header = dw
            .info
            .header_from_offset(DebugInfoOffset(info.offset as usize))
            .map_err(|e| dwarf_err(e, info.offset))?;
        let abbrevs = info
            .abbrevs
            .get_or_init(|| {
                header
                    .abbreviations(&dw.abbrev)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|what| Error::BadDwarf {
                what: format!("{what} in the abbreviations of unit {:#x}", info.offset),
            })?;
        Ok(UnitCtx {
            dw,
            info,
            header,
            abbrevs,
        })
    }

    fn global(&self, off: UnitOffset<usize>) -> u64 {
        self.info.offset + off.0 as u64
    }

    /// Resolves a reference attribute to a type id.
    pub(crate) fn type_ref(&self, value: &AttributeValue<R<'a>>) -> Option<TypeId> {
        match *value {
            AttributeValue::UnitRef(off) => Some(TypeId(self.global(off))),
            AttributeValue::DebugInfoRef(off) => Some(TypeId(off.0 as u64)),
            _ => None,
        }
    }

    fn str_offsets_base(&self) -> u64 {
        *self.info.str_offsets_base.get_or_init(|| {
            let read = || -> Option<u64> {
                let mut entries = self.header.entries_raw(&self.abbrevs, None).ok()?;
                let mut die = gimli::DebuggingInformationEntry::null();
                entries.read_entry(&mut die).ok()?;
                match die.attr_value_raw(dw::DW_AT_str_offsets_base)? {
                    AttributeValue::DebugStrOffsetsBase(b) => Some(b.0 as u64),
                    AttributeValue::SecOffset(b) => Some(b as u64),
                    _ => None,
                }
            };
            // DWARF 5 without the attribute: the first contribution.
            read().unwrap_or(if self.header.version() >= 5 { 8 } else { 0 })
        })
    }

    /// The bytes of a string attribute.
    pub(crate) fn string(&self, value: &AttributeValue<R<'a>>) -> Option<&'a [u8]> {
        let r = match *value {
            AttributeValue::String(s) => s,
            AttributeValue::DebugStrRef(off) => self.dw.str.get_str(off).ok()?,
            AttributeValue::DebugLineStrRef(off) => self.dw.line_str.get_str(off).ok()?,
            AttributeValue::DebugStrOffsetsIndex(index) => {
                let base = gimli::DebugStrOffsetsBase(self.str_offsets_base() as usize);
                let off = self
                    .dw
                    .str_offsets
                    .get_str_offset(self.header.format(), base, index)
                    .ok()?;
                self.dw.str.get_str(off).ok()?
            }
            _ => return None,
        };
        Some(r.slice())
    }
}

/// A numeric attribute read the way pahole's `attr_numeric` reads it:
/// constants zero-extended (sdata as its two's complement), flags as 0/1.
pub(crate) fn numeric(value: &AttributeValue<R<'_>>) -> Option<u64> {
    Some(match *value {
        AttributeValue::Data1(v) => v.into(),
        AttributeValue::Data2(v) => v.into(),
        AttributeValue::Data4(v) => v.into(),
        AttributeValue::Data8(v) => v,
        AttributeValue::Udata(v) => v,
        AttributeValue::Sdata(v) => v as u64,
        AttributeValue::Flag(f) => f.into(),
        AttributeValue::Addr(a) => a,
        _ => return None,
    })
}

/// An offset attribute (`DW_AT_data_member_location`): a constant, or a
/// location expression made of `DW_OP_plus_uconst`/`DW_OP_constu`.
pub(crate) fn offset_value(value: &AttributeValue<R<'_>>) -> Option<u64> {
    if let Some(v) = numeric(value) {
        return Some(v);
    }
    let mut expr = match *value {
        AttributeValue::Exprloc(e) => e.0,
        AttributeValue::Block(b) => b,
        _ => return None,
    };
    let mut total = 0u64;
    while !expr.is_empty() {
        let op = expr.read_u8().ok()?;
        match gimli::DwOp(op) {
            dw::DW_OP_plus_uconst | dw::DW_OP_constu => {
                total = total.wrapping_add(expr.read_uleb128().ok()?)
            }
            _ => return None,
        }
    }
    Some(total)
}

/// The lazily built index of named types.
#[derive(Default)]
pub(crate) struct NameIndex {
    next_unit: usize,
    complete: bool,
    /// The persistent cache was looked at (it is, once, before scanning).
    cache_tried: bool,
    pub(crate) first: FirstMap,
}

/// Enumerator values, found by a separate lazy scan.
#[derive(Default)]
pub(crate) struct EnumeratorIndex {
    pub(crate) next_unit: usize,
    pub(crate) values: FxMap<Box<str>, i64>,
}

/// How many bytes of `.debug_info` a lookup scans one unit at a time before
/// it gives up on finding its name early and indexes the rest in parallel.
const SEQUENTIAL_BUDGET: u64 = 4 << 20;

pub(crate) fn key(kind: Kind, name: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(kind as u8);
    buf.extend_from_slice(name);
}

/// Records the top-level named types of one unit into `out` (first one wins).
pub(crate) fn scan_unit(ctx: &UnitCtx<'_>, out: &mut FirstMap) -> Result<()> {
    let at = ctx.info.offset;
    let err = |e| dwarf_err(e, at);
    let mut entries = ctx.header.entries_raw(&ctx.abbrevs, None).map_err(err)?;
    let mut depth: isize = 0;
    let mut buf = Vec::with_capacity(64);
    while !entries.is_empty() {
        let die_off = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation().map_err(err)? else {
            depth -= 1;
            if depth <= 0 {
                break;
            }
            continue;
        };
        let specs = abbrev.attributes();
        if depth != 1 {
            entries.skip_attributes(specs).map_err(err)?;
            if abbrev.has_children() {
                depth += 1;
            }
            continue;
        }
        let kind = Kind::of_tag(abbrev.tag());
        if kind.is_none() && !abbrev.has_children() {
            entries.skip_attributes(specs).map_err(err)?;
            continue;
        }
        let mut name = None;
        let mut declaration = false;
        let mut sibling = None;
        for spec in specs {
            match spec.name() {
                dw::DW_AT_name if kind.is_some() => {
                    name = ctx.string(&entries.read_attribute(*spec).map_err(err)?.raw_value());
                }
                dw::DW_AT_declaration if kind.is_some() => {
                    declaration = numeric(&entries.read_attribute(*spec).map_err(err)?.raw_value())
                        != Some(0);
                }
                dw::DW_AT_sibling if abbrev.has_children() => {
                    if let AttributeValue::UnitRef(off) =
                        entries.read_attribute(*spec).map_err(err)?.raw_value()
                    {
                        sibling = Some(off);
                    }
                }
                _ => entries
                    .skip_attributes(std::slice::from_ref(spec))
                    .map_err(err)?,
            }
        }
        if let (Some(kind), Some(name), false) = (kind, name, declaration) {
            key(kind, name, &mut buf);
            if !out.contains_key(buf.as_slice()) {
                out.insert(buf.as_slice().into(), ctx.global(die_off));
            }
        }
        if abbrev.has_children() {
            match sibling.filter(|s| s.0 > die_off.0) {
                Some(s) => {
                    entries = ctx.header.entries_raw(&ctx.abbrevs, Some(s)).map_err(err)?;
                }
                None => depth += 1,
            }
        }
    }
    Ok(())
}

impl KernelDebugInfo {
    /// Scans units into the name index until `done` says so or every unit
    /// has been seen.
    pub(crate) fn index_until(&self, done: impl Fn(&FirstMap) -> bool) -> Result<()> {
        if self.btf.is_some() {
            // The BTF name index is built when the blob is parsed.
            return Ok(());
        }
        let mut index = self.index.lock().map_err(|_| Error::BadDwarf {
            what: "a lookup panicked".into(),
        })?;
        if index.complete || done(&index.first) {
            return Ok(());
        }
        let cache = self.cache_key();
        // A damaged or foreign cache file is rebuilt now, whole.
        let mut rebuild = false;
        if !index.cache_tried {
            index.cache_tried = true;
            if let Some((dir, key)) = &cache {
                match super::cache::load(dir, key) {
                    super::cache::Cached::Loaded(map, units) => {
                        // The units' bounds too: no walk over every unit
                        // header (unless something listed them already).
                        let _ = self.units.set(Ok(units
                            .into_iter()
                            .map(|(offset, end)| UnitInfo::new(offset, end))
                            .collect()));
                        index.first = map;
                        index.complete = true;
                        return Ok(());
                    }
                    super::cache::Cached::Invalid => rebuild = true,
                    super::cache::Cached::Missing => {}
                }
            }
        }
        let done = |m: &FirstMap| !rebuild && done(m);
        let units = self.units()?;
        let dw = self.dw()?;
        let mut scanned = 0u64;
        while index.next_unit < units.len() {
            if scanned > SEQUENTIAL_BUDGET {
                let rest = &units[index.next_unit..];
                let parts = scan_parallel(dw, rest)?;
                for part in parts {
                    for (k, v) in part {
                        index.first.entry(k).or_insert(v);
                    }
                }
                index.next_unit = units.len();
                break;
            }
            let unit = &units[index.next_unit];
            // A unit that does not parse is skipped: the others still index.
            if let Ok(ctx) = UnitCtx::scan(dw, unit) {
                let _ = scan_unit(&ctx, &mut index.first);
            }
            index.next_unit += 1;
            scanned += unit.end - unit.offset;
            if done(&index.first) {
                break;
            }
        }
        if index.next_unit >= units.len() {
            index.complete = true;
            if let Some((dir, key)) = &cache {
                // A cache that cannot be written only costs time next run.
                let bounds: Vec<(u64, u64)> = units.iter().map(|u| (u.offset, u.end)).collect();
                let _ = super::cache::store(dir, key, &index.first, &bounds);
            }
        }
        Ok(())
    }

    /// Builds the whole name index now (normally it grows as lookups need).
    pub fn index_all(&self) -> Result<()> {
        self.index_until(|_| false)
    }

    /// The first definition of a (kind, name).
    pub(crate) fn find(&self, kind: Kind, name: &str) -> Result<Option<TypeId>> {
        if let Some(btf) = &self.btf {
            return Ok(btf.find(kind, name));
        }
        let mut buf = Vec::new();
        key(kind, name.as_bytes(), &mut buf);
        self.index_until(|m| m.contains_key(buf.as_slice()))?;
        let index = self.index.lock().map_err(|_| Error::BadDwarf {
            what: "a lookup panicked".into(),
        })?;
        Ok(index.first.get(buf.as_slice()).map(|&o| TypeId(o)))
    }
}

/// Records every enumerator of the unit's top-level enumerations.
pub(crate) fn scan_enumerators(ctx: &UnitCtx<'_>, out: &mut FxMap<Box<str>, i64>) -> Result<()> {
    let at = ctx.info.offset;
    let err = |e| dwarf_err(e, at);
    let mut entries = ctx.header.entries_raw(&ctx.abbrevs, None).map_err(err)?;
    let mut depth: isize = 0;
    let mut in_enum_at: Option<isize> = None;
    while !entries.is_empty() {
        let d = depth;
        let die_off = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation().map_err(err)? else {
            depth -= 1;
            if in_enum_at == Some(depth) {
                in_enum_at = None;
            }
            if depth <= 0 {
                break;
            }
            continue;
        };
        let tag = abbrev.tag();
        if tag == dw::DW_TAG_enumerator && in_enum_at.is_some() {
            let mut name = None;
            let mut value = None;
            for spec in abbrev.attributes() {
                let v = entries.read_attribute(*spec).map_err(err)?.raw_value();
                match spec.name() {
                    dw::DW_AT_name => name = ctx.string(&v),
                    dw::DW_AT_const_value => {
                        value = match v {
                            AttributeValue::Sdata(s) => Some(s),
                            other => numeric(&other).map(|u| u as i64),
                        }
                    }
                    _ => {}
                }
            }
            if let (Some(n), Some(v)) = (name.and_then(|n| std::str::from_utf8(n).ok()), value) {
                if !out.contains_key(n) {
                    out.insert(n.into(), v);
                }
            }
        } else if d == 1 && tag == dw::DW_TAG_enumeration_type && abbrev.has_children() {
            entries.skip_attributes(abbrev.attributes()).map_err(err)?;
            in_enum_at = Some(d);
        } else if d == 1 && abbrev.has_children() {
            // Skip the subtree when DW_AT_sibling says where it ends.
            let mut sibling = None;
            for spec in abbrev.attributes() {
                if spec.name() == dw::DW_AT_sibling {
                    if let AttributeValue::UnitRef(off) =
                        entries.read_attribute(*spec).map_err(err)?.raw_value()
                    {
                        sibling = Some(off);
                    }
                } else {
                    entries
                        .skip_attributes(std::slice::from_ref(spec))
                        .map_err(err)?;
                }
            }
            if let Some(s) = sibling.filter(|s| s.0 > die_off.0) {
                entries = ctx.header.entries_raw(&ctx.abbrevs, Some(s)).map_err(err)?;
                continue;
            }
        } else {
            entries.skip_attributes(abbrev.attributes()).map_err(err)?;
        }
        if abbrev.has_children() {
            depth += 1;
        }
    }
    Ok(())
}

/// Splits `units` into one part per core and indexes them in parallel; the
/// parts come back in unit order.
pub(crate) fn scan_parallel(dw: Dw<'_>, units: &[UnitInfo]) -> Result<Vec<FirstMap>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunks = super::enumerate::chunks(units, threads);
    let scan_chunk = |chunk: &[UnitInfo]| -> Result<FirstMap> {
        let mut map = FirstMap::default();
        for u in chunk {
            if let Ok(ctx) = UnitCtx::scan(dw, u) {
                let _ = scan_unit(&ctx, &mut map);
            }
        }
        Ok(map)
    };
    if chunks.len() <= 1 {
        return chunks.into_iter().map(scan_chunk).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|&c| s.spawn(move || scan_chunk(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::BadDwarf {
                        what: "an index thread panicked".into(),
                    })
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_from_location_expressions() {
        let e = [0x23u8, 0x90, 0x01]; // DW_OP_plus_uconst 144
        let v = AttributeValue::Exprloc(gimli::Expression(R::new(&e, gimli::LittleEndian)));
        assert_eq!(offset_value(&v), Some(144));
        assert_eq!(offset_value(&AttributeValue::Data1(8)), Some(8));
        let bad = [0x06u8]; // DW_OP_deref
        let v = AttributeValue::Exprloc(gimli::Expression(R::new(&bad, gimli::LittleEndian)));
        assert_eq!(offset_value(&v), None);
    }
}
