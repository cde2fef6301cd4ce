//! Types from `.debug_info`: the name index, the type model, member lookup.
//!
//! A type is identified by the `.debug_info` offset of its DIE
//! ([`TypeId`]). Type DIEs are decoded on demand and cached.
//!
//! Kernel DWARF repeats every type in every compilation unit that uses it,
//! so the index keeps only the *first* definition of each (kind, name), in
//! `.debug_info` order. That is also the definition `pahole -C` prints: it
//! loads units in order and stops at the first one that defines the name.
//! Declarations (`DW_AT_declaration`) are not indexed, and neither are
//! types declared inside functions (pahole would also find those).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use gimli::constants as dw;
use gimli::{AttributeValue, DebugInfoOffset, Reader, UnitOffset};

use super::{dwarf_err, Dw, KernelDebugInfo, R};
use crate::error::{Error, Result};

/// A type: the `.debug_info` offset of its DIE, or its BTF type id when
/// the types come from BTF (see [`super::btf`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u64);

/// A member of a struct or union, as [`KernelDebugInfo::member`] finds it.
///
/// For a bitfield, `offset` and `size` describe the storage unit that holds
/// it (an aligned integer of the bitfield's declared type), and
/// `bit_offset` counts from that unit's least significant bit: read `size`
/// bytes at `offset` as a little-endian integer, shift right by
/// `bit_offset` and keep `bit_size` bits. This is how `pahole` shows
/// bitfields too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// Bytes from the start of the outermost type asked about.
    pub offset: u64,
    /// Size in bytes (of the storage unit, for a bitfield).
    pub size: u64,
    /// For a bitfield: the first bit within the storage unit.
    pub bit_offset: Option<u32>,
    /// For a bitfield: its width in bits.
    pub bit_size: Option<u32>,
    /// The member's C type, spelled as pahole spells it
    /// (`struct list_head`, `long unsigned int`, `struct task_struct *`).
    pub type_name: String,
    /// The member's type.
    #[serde(skip)]
    pub type_id: Option<TypeId>,
}

/// The kinds of named type the index knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Struct = 1,
    Union = 2,
    Enum = 3,
    Typedef = 4,
    Base = 5,
}

impl Kind {
    fn of_tag(tag: dw::DwTag) -> Option<Kind> {
        Some(match tag {
            dw::DW_TAG_structure_type | dw::DW_TAG_class_type => Kind::Struct,
            dw::DW_TAG_union_type => Kind::Union,
            dw::DW_TAG_enumeration_type => Kind::Enum,
            dw::DW_TAG_typedef => Kind::Typedef,
            dw::DW_TAG_base_type => Kind::Base,
            _ => return None,
        })
    }
}

/// The kinds `pahole -C` looks for (`tag__is_type`).
pub(crate) const PAHOLE_KINDS: [Kind; 4] = [Kind::Struct, Kind::Union, Kind::Typedef, Kind::Enum];

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
            units.push(UnitInfo {
                offset,
                end: offset + header.length_including_self() as u64,
                abbrevs: OnceLock::new(),
                str_offsets_base: OnceLock::new(),
            });
        }
        Ok(units)
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

/// What a `DW_TAG_const_type`-like DIE adds to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    Const,
    Volatile,
    Restrict,
    Atomic,
}

/// A struct or union (or class) type.
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub(crate) name: Option<String>,
    pub(crate) byte_size: u64,
    pub(crate) alignment: u32,
    pub(crate) members: Vec<RawMember>,
}

/// A `DW_TAG_member` (or `DW_TAG_inheritance`) as DWARF states it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawMember {
    pub(crate) inheritance: bool,
    pub(crate) name: Option<String>,
    pub(crate) ty: Option<TypeId>,
    pub(crate) location: Option<u64>,
    pub(crate) data_bit_offset: Option<u64>,
    /// DWARF ≤ 4 `DW_AT_bit_offset`: from the storage unit's most
    /// significant bit.
    pub(crate) bit_offset_attr: Option<u64>,
    pub(crate) byte_size: Option<u64>,
    pub(crate) bit_size: Option<u64>,
    pub(crate) alignment: u32,
}

/// An enumeration type.
#[derive(Debug, Clone)]
pub(crate) struct EnumType {
    pub(crate) name: Option<String>,
    /// `DW_AT_byte_size` (4 when absent, as pahole assumes).
    pub(crate) byte_size: u64,
    pub(crate) signed: bool,
    pub(crate) enumerators: Vec<(String, u64)>,
}

/// One type DIE, decoded.
#[derive(Debug, Clone)]
pub(crate) enum Type {
    Base {
        name: Option<String>,
        byte_size: u64,
    },
    Pointer {
        target: Option<TypeId>,
    },
    Reference {
        target: Option<TypeId>,
    },
    Qualified {
        qualifier: Qualifier,
        target: Option<TypeId>,
    },
    Typedef {
        name: Option<String>,
        target: Option<TypeId>,
    },
    Struct(Aggregate),
    Union(Aggregate),
    Enum(EnumType),
    Array {
        elem: Option<TypeId>,
        /// Entries per dimension (pahole's `uint32_t nr_entries[]`: a
        /// flexible array has 0).
        dims: Vec<u32>,
        is_vector: bool,
    },
    Subroutine {
        ret: Option<TypeId>,
        params: Vec<Option<TypeId>>,
        variadic: bool,
    },
    Unspecified {
        name: Option<String>,
    },
    Other {
        name: Option<String>,
        target: Option<TypeId>,
    },
}

impl Type {
    /// The type this one refers to (`DW_AT_type`), for everything but
    /// structs, unions and enums.
    pub(crate) fn target(&self) -> Option<TypeId> {
        match self {
            Type::Pointer { target }
            | Type::Reference { target }
            | Type::Qualified { target, .. }
            | Type::Typedef { target, .. }
            | Type::Other { target, .. } => *target,
            Type::Array { elem, .. } => *elem,
            Type::Subroutine { ret, .. } => *ret,
            _ => None,
        }
    }

    /// The type's own name, if it has one.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Type::Base { name, .. }
            | Type::Typedef { name, .. }
            | Type::Unspecified { name }
            | Type::Other { name, .. } => name.as_deref(),
            Type::Struct(a) | Type::Union(a) => a.name.as_deref(),
            Type::Enum(e) => e.name.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn is_struct(&self) -> bool {
        matches!(self, Type::Struct(_))
    }

    pub(crate) fn aggregate(&self) -> Option<&Aggregate> {
        match self {
            Type::Struct(a) | Type::Union(a) => Some(a),
            _ => None,
        }
    }
}

/// A fast hasher for short keys (FNV-1a over 8-byte words).
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        self.0 = h;
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// First definition of each (kind, name): key is the kind byte followed by
/// the name.
pub(crate) type FirstMap = FxMap<Box<[u8]>, u64>;

/// The lazily built index of named types.
#[derive(Default)]
pub(crate) struct NameIndex {
    next_unit: usize,
    complete: bool,
    /// The persistent cache was looked at (it is, once, before scanning).
    cache_tried: bool,
    first: FirstMap,
}

/// Enumerator values, found by a separate lazy scan.
#[derive(Default)]
pub(crate) struct EnumeratorIndex {
    next_unit: usize,
    values: FxMap<Box<str>, i64>,
}

/// How many bytes of `.debug_info` a lookup scans one unit at a time before
/// it gives up on finding its name early and indexes the rest in parallel.
const SEQUENTIAL_BUDGET: u64 = 4 << 20;

fn key(kind: Kind, name: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(kind as u8);
    buf.extend_from_slice(name);
}

/// Records the top-level named types of one unit into `out` (first one wins).
fn scan_unit(ctx: &UnitCtx<'_>, out: &mut FirstMap) -> Result<()> {
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
    fn index_until(&self, done: impl Fn(&FirstMap) -> bool) -> Result<()> {
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
                    super::cache::Cached::Loaded(map) => {
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
            if let Ok(ctx) = UnitCtx::new(dw, unit) {
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
                let _ = super::cache::store(dir, key, &index.first);
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

    /// The type `pahole -C name` shows: the first struct, union, typedef or
    /// enum of that name, in unit order.
    pub fn find_pahole_type(&self, name: &str) -> Result<TypeId> {
        if let Some(btf) = &self.btf {
            return PAHOLE_KINDS
                .iter()
                .filter_map(|&k| btf.find(k, name))
                .min()
                .ok_or_else(|| self.not_found(name));
        }
        let keys: Vec<Vec<u8>> = PAHOLE_KINDS
            .iter()
            .map(|&k| {
                let mut b = Vec::new();
                key(k, name.as_bytes(), &mut b);
                b
            })
            .collect();
        self.index_until(|m| keys.iter().any(|k| m.contains_key(k.as_slice())))?;
        let found = {
            let index = self.index.lock().map_err(|_| Error::BadDwarf {
                what: "a lookup panicked".into(),
            })?;
            keys.iter()
                .filter_map(|k| index.first.get(k.as_slice()).copied())
                .min()
        };
        found.map(TypeId).ok_or_else(|| self.not_found(name))
    }

    /// Resolves a C type name: `struct x`, `union x`, `enum x`, or a bare
    /// name (a struct first, then a union, a typedef, an enum, a base type).
    pub fn find_type(&self, name: &str) -> Result<TypeId> {
        let name = name.trim();
        let (kinds, bare): (&[Kind], &str) = if let Some(n) = name.strip_prefix("struct ") {
            (&[Kind::Struct], n.trim())
        } else if let Some(n) = name.strip_prefix("union ") {
            (&[Kind::Union], n.trim())
        } else if let Some(n) = name.strip_prefix("enum ") {
            (&[Kind::Enum], n.trim())
        } else {
            (
                &[
                    Kind::Struct,
                    Kind::Union,
                    Kind::Typedef,
                    Kind::Enum,
                    Kind::Base,
                ],
                name,
            )
        };
        for &kind in kinds {
            if let Some(id) = self.find(kind, bare)? {
                return Ok(id);
            }
        }
        Err(self.not_found(name))
    }

    fn not_found(&self, name: &str) -> Error {
        Error::TypeNotFound {
            name: name.to_string(),
            suggestions: self.suggest(name),
        }
    }

    /// Names in the (complete) index that are close to `name`.
    pub(crate) fn suggest(&self, name: &str) -> Vec<String> {
        if self.index_all().is_err() {
            return Vec::new();
        }
        let Ok(index) = self.index.lock() else {
            return Vec::new();
        };
        let keys: Vec<&[u8]> = match &self.btf {
            Some(btf) => btf.names().collect(),
            None => index.first.keys().map(|k| &k[..]).collect(),
        };
        let bare = name
            .trim_start_matches("struct ")
            .trim_start_matches("union ")
            .trim_start_matches("enum ");
        let limit = (bare.len() / 3).max(1);
        let mut scored: Vec<(usize, String)> = keys
            .into_iter()
            .filter(|k| k.first() != Some(&(Kind::Base as u8)))
            .filter_map(|k| std::str::from_utf8(&k[1..]).ok())
            .filter_map(|cand| {
                let d =
                    if cand.contains(bare) && !bare.is_empty() && cand.len() < bare.len() * 2 + 4 {
                        1
                    } else {
                        edit_distance(bare, cand, limit)?
                    };
                Some((d, cand.to_string()))
            })
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(5).map(|(_, n)| n).collect()
    }

    /// Decodes (once) the type DIE at `id`.
    pub(crate) fn ty(&self, id: TypeId) -> Result<Arc<Type>> {
        if let Some(btf) = &self.btf {
            return btf.ty(id);
        }
        if let Ok(cache) = self.type_cache.lock() {
            if let Some(t) = cache.get(&id.0) {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(self.load_type(id)?);
        if let Ok(mut cache) = self.type_cache.lock() {
            cache.insert(id.0, t.clone());
        }
        Ok(t)
    }

    pub(crate) fn unit_of(&self, off: u64) -> Result<&UnitInfo> {
        let units = self.units()?;
        let pos = units.partition_point(|u| u.end <= off);
        units
            .get(pos)
            .filter(|u| u.offset <= off)
            .ok_or_else(|| Error::BadDwarf {
                what: format!("no unit holds .debug_info+{off:#x}"),
            })
    }

    fn load_type(&self, id: TypeId) -> Result<Type> {
        if let Some(btf) = &self.btf {
            let raw = u32::try_from(id.0).map_err(|_| Error::BadDwarf {
                what: format!("no BTF type {:#x}", id.0),
            })?;
            return btf.to_type(raw);
        }
        let unit = self.unit_of(id.0)?;
        let ctx = UnitCtx::new(self.dw()?, unit)?;
        let err = |e| dwarf_err(e, id.0);
        let start = UnitOffset((id.0 - unit.offset) as usize);
        let mut entries = ctx
            .header
            .entries_raw(&ctx.abbrevs, Some(start))
            .map_err(err)?;
        let mut die = gimli::DebuggingInformationEntry::null();
        if !entries.read_entry(&mut die).map_err(err)? {
            return Err(Error::BadDwarf {
                what: format!("no type at .debug_info+{:#x}", id.0),
            });
        }
        let mut name = None;
        let mut target = None;
        let mut byte_size = None;
        let mut alignment = 0u32;
        let mut is_vector = false;
        for attr in &die.attrs {
            let v = attr.raw_value();
            match attr.name() {
                dw::DW_AT_name => {
                    name = ctx
                        .string(&v)
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                }
                dw::DW_AT_type => target = ctx.type_ref(&v),
                dw::DW_AT_byte_size => byte_size = numeric(&v),
                dw::DW_AT_alignment => alignment = numeric(&v).unwrap_or(0) as u32,
                dw::DW_AT_GNU_vector => is_vector = true,
                _ => {}
            }
        }
        // Children, one level down, for the tags that have them.
        let mut children = Vec::new();
        if die.has_children {
            let mut depth = 1isize;
            let mut child = gimli::DebuggingInformationEntry::null();
            while depth > 0 && !entries.is_empty() {
                let d = depth;
                if !entries.read_entry(&mut child).map_err(err)? {
                    depth -= 1;
                    continue;
                }
                if child.has_children {
                    depth += 1;
                }
                if d == 1 {
                    children.push(child.clone());
                }
            }
        }
        let qualified = |qualifier| Type::Qualified { qualifier, target };
        Ok(match die.tag {
            dw::DW_TAG_base_type => Type::Base {
                name,
                byte_size: byte_size.unwrap_or(0),
            },
            dw::DW_TAG_pointer_type => Type::Pointer { target },
            dw::DW_TAG_reference_type | dw::DW_TAG_rvalue_reference_type => {
                Type::Reference { target }
            }
            dw::DW_TAG_const_type => qualified(Qualifier::Const),
            dw::DW_TAG_volatile_type => qualified(Qualifier::Volatile),
            dw::DW_TAG_restrict_type => qualified(Qualifier::Restrict),
            dw::DW_TAG_atomic_type => qualified(Qualifier::Atomic),
            dw::DW_TAG_typedef => Type::Typedef { name, target },
            dw::DW_TAG_unspecified_type => Type::Unspecified { name },
            dw::DW_TAG_structure_type | dw::DW_TAG_class_type | dw::DW_TAG_union_type => {
                let in_union = die.tag == dw::DW_TAG_union_type;
                let mut members = Vec::new();
                for c in &children {
                    if c.tag != dw::DW_TAG_member && c.tag != dw::DW_TAG_inheritance {
                        continue;
                    }
                    let mut m = RawMember {
                        inheritance: c.tag == dw::DW_TAG_inheritance,
                        ..RawMember::default()
                    };
                    for attr in &c.attrs {
                        let v = attr.raw_value();
                        match attr.name() {
                            dw::DW_AT_name => {
                                m.name = ctx
                                    .string(&v)
                                    .map(|s| String::from_utf8_lossy(s).into_owned())
                            }
                            dw::DW_AT_type => m.ty = ctx.type_ref(&v),
                            dw::DW_AT_data_member_location => m.location = offset_value(&v),
                            dw::DW_AT_data_bit_offset => m.data_bit_offset = offset_value(&v),
                            dw::DW_AT_bit_offset => m.bit_offset_attr = numeric(&v),
                            dw::DW_AT_byte_size => m.byte_size = numeric(&v),
                            dw::DW_AT_bit_size => m.bit_size = numeric(&v),
                            dw::DW_AT_alignment => m.alignment = numeric(&v).unwrap_or(0) as u32,
                            _ => {}
                        }
                    }
                    if in_union && m.location.is_none() && m.data_bit_offset.is_none() {
                        m.location = Some(0);
                    }
                    members.push(m);
                }
                let agg = Aggregate {
                    name,
                    byte_size: byte_size.unwrap_or(0),
                    alignment,
                    members,
                };
                if in_union {
                    Type::Union(agg)
                } else {
                    Type::Struct(agg)
                }
            }
            dw::DW_TAG_enumeration_type => {
                let signed = match target {
                    Some(t) => {
                        matches!(self.ty(t).ok().as_deref(), Some(Type::Base { .. }))
                            && self.base_encoding_signed(t)
                    }
                    None => false,
                };
                let mut enumerators = Vec::new();
                for c in children.iter().filter(|c| c.tag == dw::DW_TAG_enumerator) {
                    let mut n = String::new();
                    let mut value = 0u64;
                    for attr in &c.attrs {
                        let v = attr.raw_value();
                        match attr.name() {
                            dw::DW_AT_name => {
                                n = ctx
                                    .string(&v)
                                    .map(|s| String::from_utf8_lossy(s).into_owned())
                                    .unwrap_or_default()
                            }
                            dw::DW_AT_const_value => value = numeric(&v).unwrap_or(0),
                            _ => {}
                        }
                    }
                    enumerators.push((n, value));
                }
                Type::Enum(EnumType {
                    name,
                    byte_size: byte_size.filter(|&s| s != 0).unwrap_or(4),
                    signed,
                    enumerators,
                })
            }
            dw::DW_TAG_array_type => {
                let mut dims = Vec::new();
                for c in children
                    .iter()
                    .filter(|c| c.tag == dw::DW_TAG_subrange_type)
                {
                    let upper = c.attr_value_raw(dw::DW_AT_upper_bound);
                    let count = c.attr_value_raw(dw::DW_AT_count);
                    // pahole: upper_bound + 1, else count, else 0; as u32.
                    let n = match (upper, count) {
                        (Some(u), _) => numeric(&u).map_or(0, |v| v.wrapping_add(1)),
                        (None, Some(c)) => numeric(&c).unwrap_or(0),
                        (None, None) => 0,
                    };
                    dims.push(n as u32);
                }
                Type::Array {
                    elem: target,
                    dims,
                    is_vector,
                }
            }
            dw::DW_TAG_subroutine_type => {
                let mut params = Vec::new();
                let mut variadic = false;
                for c in &children {
                    match c.tag {
                        dw::DW_TAG_formal_parameter => params.push(
                            c.attr_value_raw(dw::DW_AT_type)
                                .and_then(|v| ctx.type_ref(&v)),
                        ),
                        dw::DW_TAG_unspecified_parameters => variadic = true,
                        _ => {}
                    }
                }
                Type::Subroutine {
                    ret: target,
                    params,
                    variadic,
                }
            }
            _ => Type::Other { name, target },
        })
    }

    fn base_encoding_signed(&self, id: TypeId) -> bool {
        let read = || -> Option<bool> {
            let unit = self.unit_of(id.0).ok()?;
            let ctx = UnitCtx::new(self.dw().ok()?, unit).ok()?;
            let start = UnitOffset((id.0 - unit.offset) as usize);
            let mut entries = ctx.header.entries_raw(&ctx.abbrevs, Some(start)).ok()?;
            let mut die = gimli::DebuggingInformationEntry::null();
            entries.read_entry(&mut die).ok()?;
            let enc = numeric(&die.attr_value_raw(dw::DW_AT_encoding)?)?;
            Some(matches!(
                gimli::DwAte(enc as u8),
                dw::DW_ATE_signed | dw::DW_ATE_signed_char
            ))
        };
        read().unwrap_or(false)
    }

    /// Follows typedefs and qualifiers to the underlying type.
    pub(crate) fn strip(&self, mut id: Option<TypeId>) -> Result<Option<TypeId>> {
        for _ in 0..64 {
            let Some(i) = id else { return Ok(None) };
            match &*self.ty(i)? {
                Type::Typedef { target, .. } | Type::Qualified { target, .. } => id = *target,
                _ => return Ok(Some(i)),
            }
        }
        Err(Error::BadDwarf {
            what: "typedef loop".into(),
        })
    }

    /// `sizeof` of a type, the way pahole's `tag__size` computes it.
    pub(crate) fn size_of(&self, id: Option<TypeId>) -> Result<u64> {
        let mut id = id;
        let mut mult = 1u64;
        for _ in 0..64 {
            let Some(i) = id else { return Ok(0) };
            let t = self.ty(i)?;
            match &*t {
                Type::Pointer { .. } | Type::Reference { .. } => return Ok(8 * mult),
                Type::Base { byte_size, .. } => return Ok(byte_size * mult),
                Type::Enum(e) => return Ok(e.byte_size * mult),
                Type::Struct(a) | Type::Union(a) => {
                    let size = if a.byte_size == 1 && a.members.is_empty() {
                        0
                    } else {
                        a.byte_size
                    };
                    return Ok(size * mult);
                }
                Type::Unspecified { .. } => return Ok(0),
                Type::Array { elem, dims, .. } => {
                    let n: u64 = dims.iter().map(|&d| u64::from(d)).product();
                    mult = mult.wrapping_mul(n);
                    id = *elem;
                }
                other => id = other.target(),
            }
        }
        Err(Error::BadDwarf {
            what: "type loop".into(),
        })
    }

    /// The size in bytes of a type given by name (see [`KernelDebugInfo::find_type`]).
    pub fn type_size(&self, name: &str) -> Result<u64> {
        let id = self.find_type(name)?;
        self.size_of(Some(id))
    }

    /// Finds a member by path (`"signal"`, `"thread.sp"`, `"se.vruntime"`,
    /// `"pids[1]"`) in the type named `ty`. Anonymous structs and unions are
    /// searched transparently, as C does.
    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        let root = self.find_type(ty)?;
        let not_found = || Error::MemberNotFound {
            ty: ty.to_string(),
            member: path.to_string(),
        };
        let mut current = Some(root);
        let mut offset = 0u64;
        let mut found: Option<Member> = None;
        for part in path.split('.') {
            let (name, indexes) = split_indexes(part).ok_or_else(not_found)?;
            let agg_id = self.strip(current)?.ok_or_else(not_found)?;
            let (rel, raw) = self.find_member(agg_id, name)?.ok_or_else(not_found)?;
            let mut m = self.describe_member(&raw, rel)?;
            m.offset += offset;
            for idx in indexes {
                let arr = self.strip(m.type_id)?.ok_or_else(not_found)?;
                let Type::Array { elem, .. } = &*self.ty(arr)? else {
                    return Err(not_found());
                };
                let esize = self.size_of(*elem)?;
                m.offset += esize * idx;
                m.size = esize;
                m.type_id = *elem;
                m.type_name = self.type_name(*elem);
            }
            offset = m.offset;
            current = m.type_id;
            found = Some(m);
        }
        found.ok_or_else(not_found)
    }

    /// Whether [`KernelDebugInfo::member`] would find `path` in `ty`.
    pub fn has_member(&self, ty: &str, path: &str) -> bool {
        self.member(ty, path).is_ok()
    }

    /// Searches `agg` (and, transparently, its anonymous members) for a
    /// member called `name`; gives the byte offset of the anonymous
    /// container it was found in.
    fn find_member(&self, agg: TypeId, name: &str) -> Result<Option<(u64, RawMember)>> {
        let _guard = DepthGuard::enter()?;
        let t = self.ty(agg)?;
        let Some(a) = t.aggregate() else {
            return Ok(None);
        };
        for m in &a.members {
            if m.name.as_deref() == Some(name) {
                return Ok(Some((0, m.clone())));
            }
        }
        for m in a.members.iter().filter(|m| m.name.is_none()) {
            if let Some(inner) = self.strip(m.ty)? {
                if let Some((rel, found)) = self.find_member(inner, name)? {
                    let base = m.location.unwrap_or(0);
                    return Ok(Some((base + rel, found)));
                }
            }
        }
        Ok(None)
    }

    fn describe_member(&self, m: &RawMember, base: u64) -> Result<Member> {
        let type_name = self.type_name(m.ty);
        let Some(bits) = m.bit_size.filter(|&b| b != 0) else {
            return Ok(Member {
                offset: base + m.location.unwrap_or(0),
                size: match m.byte_size {
                    Some(s) if s != 0 => s,
                    _ => self.size_of(m.ty)?,
                },
                bit_offset: None,
                bit_size: None,
                type_name,
                type_id: m.ty,
            });
        };
        let unit = match m.byte_size {
            Some(s) if s != 0 => s,
            _ => self.size_of(self.strip(m.ty)?)?,
        }
        .max(1);
        // The bitfield's first bit, from the start of its container.
        let first_bit = match (m.data_bit_offset, m.bit_offset_attr) {
            (Some(b), _) => b,
            (None, Some(msb)) => (m.location.unwrap_or(0) * 8 + unit * 8).wrapping_sub(msb + bits),
            (None, None) => m.location.unwrap_or(0) * 8,
        };
        let storage = first_bit / (unit * 8) * unit;
        Ok(Member {
            offset: base + storage,
            size: unit,
            bit_offset: Some((first_bit - storage * 8) as u32),
            bit_size: Some(bits as u32),
            type_name,
            type_id: m.ty,
        })
    }

    /// The value of an enumerator (`PIDTYPE_PID`), from the first
    /// enumeration that defines it.
    pub fn enumerator(&self, name: &str) -> Option<i64> {
        if let Some(btf) = &self.btf {
            return btf.enumerator(name);
        }
        let mut index = self.enumerators.lock().ok()?;
        if let Some(&v) = index.values.get(name) {
            return Some(v);
        }
        let units = self.units().ok()?;
        let dw = self.dw().ok()?;
        while index.next_unit < units.len() {
            let ctx = UnitCtx::new(dw, &units[index.next_unit]).ok()?;
            index.next_unit += 1;
            if scan_enumerators(&ctx, &mut index.values).is_err() {
                continue;
            }
            if let Some(&v) = index.values.get(name) {
                return Some(v);
            }
        }
        None
    }

    /// The C name of a type, spelled as pahole spells it, with array
    /// dimensions appended (`char[16]`, `struct list_head[4]`).
    pub fn type_name(&self, id: Option<TypeId>) -> String {
        let mut name = self.tag_name(id, usize::MAX);
        let mut id = id;
        // Dimensions of arrays, through typedef-free array chains.
        while let Some(i) = id {
            match self.ty(i).as_deref() {
                Ok(Type::Array { elem, dims, .. }) => {
                    for d in dims {
                        name.push_str(&format!("[{d}]"));
                    }
                    id = *elem;
                }
                _ => break,
            }
        }
        name
    }

    /// pahole's `__tag__name`, including its fixed-size buffers: the result
    /// is cut to `len - 1` bytes, as `snprintf` would.
    pub(crate) fn tag_name(&self, id: Option<TypeId>, len: usize) -> String {
        let Ok(_guard) = DepthGuard::enter() else {
            return truncate("<ERROR: type loop>".into(), len);
        };
        let Some(id) = id else {
            return truncate("void".into(), len);
        };
        let t = match self.ty(id) {
            Ok(t) => t,
            Err(_) => return truncate(format!("<ERROR: type {:#x} not found>", id.0), len),
        };
        let s = match &*t {
            Type::Base { name, .. } => name.clone().unwrap_or_else(|| "nameless base type!".into()),
            Type::Pointer { target } => return self.ptr_name(*target, len, "*"),
            Type::Reference { target } => return self.ptr_name(*target, len, "&"),
            Type::Qualified { qualifier, target } => {
                let inner = self.tag_name(*target, 128);
                match qualifier {
                    Qualifier::Const => format!("const {inner} "),
                    Qualifier::Volatile => format!("volatile {inner} "),
                    Qualifier::Restrict => format!("{inner} restrict "),
                    Qualifier::Atomic => String::new(),
                }
            }
            Type::Unspecified { .. } => {
                // pahole groups it with the qualifiers, with no prefix.
                "void ".to_string()
            }
            Type::Array { elem, .. } => return self.tag_name(*elem, len),
            Type::Subroutine { .. } => self.ftype_string(id, None, false, false, 0, true),
            Type::Struct(a) => format!("struct {}", a.name.as_deref().unwrap_or("")),
            Type::Union(a) => format!("union {}", a.name.as_deref().unwrap_or("")),
            Type::Enum(e) => format!("enum {}", e.name.as_deref().unwrap_or("")),
            Type::Typedef { name, .. } | Type::Other { name, .. } => {
                name.clone().unwrap_or_default()
            }
        };
        truncate(s, len)
    }

    fn ptr_name(&self, target: Option<TypeId>, len: usize, suffix: &str) -> String {
        let Some(mut t) = target else {
            return truncate(format!("void {suffix}"), len);
        };
        let mut const_pointer = "";
        if let Ok(ty) = self.ty(t) {
            if let Type::Qualified {
                qualifier: Qualifier::Const,
                target: Some(next),
            } = &*ty
            {
                if matches!(self.ty(*next).as_deref(), Ok(Type::Pointer { .. })) {
                    const_pointer = "const ";
                    t = *next;
                }
            }
        }
        let inner = self.tag_name(Some(t), 1024);
        truncate(format!("{inner} {const_pointer}{suffix}"), len)
    }

    /// pahole's `ftype__fprintf` of a subroutine type: `ret (*name)(params)`.
    pub(crate) fn ftype_string(
        &self,
        id: TypeId,
        name: Option<&str>,
        inlined: bool,
        is_pointer: bool,
        type_spacing: i32,
        is_prototype: bool,
    ) -> String {
        let Ok(t) = self.ty(id) else {
            return String::new();
        };
        let Type::Subroutine {
            ret,
            params,
            variadic,
        } = &*t
        else {
            return String::new();
        };
        let stype = self.tag_name(*ret, 128);
        let mut s = format!(
            "{}{:<w$} {}{}{}{}",
            if inlined { "inline " } else { "" },
            stype,
            if is_prototype { "(" } else { "" },
            if is_pointer { "*" } else { "" },
            name.unwrap_or(""),
            if is_prototype { ")" } else { "" },
            w = type_spacing.unsigned_abs() as usize
        );
        s.push('(');
        let mut first = true;
        for p in params {
            if !first {
                s.push_str(", ");
            }
            first = false;
            let Some(pid) = p else {
                s.push_str("void");
                continue;
            };
            let pt = match self.ty(*pid) {
                Ok(pt) => pt,
                Err(_) => {
                    s.push_str(&format!("<ERROR: type {} not found>", pid.0));
                    continue;
                }
            };
            match &*pt {
                Type::Pointer {
                    target: Some(inner),
                } if matches!(self.ty(*inner).as_deref(), Ok(Type::Subroutine { .. })) => {
                    s.push_str(&self.ftype_string(*inner, None, false, true, 0, true));
                }
                Type::Subroutine { .. } => {
                    s.push_str(&self.ftype_string(*pid, None, true, false, 0, false));
                }
                _ => s.push_str(&self.tag_name(Some(*pid), 128)),
            }
        }
        if first {
            s.push_str("void)");
        } else if *variadic {
            s.push_str(", ...)");
        } else {
            s.push(')');
        }
        s
    }
}

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How deep type walks may recurse: far beyond any real C type, well short
/// of the stack (a damaged DWARF can make types contain themselves).
const MAX_DEPTH: usize = 200;

/// A level of recursion in a type walk; dropping it leaves the level.
pub(crate) struct DepthGuard(());

impl DepthGuard {
    /// Enters one more level, or fails when types nest absurdly deep.
    pub(crate) fn enter() -> Result<DepthGuard> {
        DEPTH.with(|d| {
            if d.get() >= MAX_DEPTH {
                return Err(Error::BadDwarf {
                    what: "types nest too deep (a type loop?)".into(),
                });
            }
            d.set(d.get() + 1);
            Ok(DepthGuard(()))
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Cuts a string the way `snprintf(bf, len, …)` does.
pub(crate) fn truncate(mut s: String, len: usize) -> String {
    if len != usize::MAX && s.len() >= len {
        let mut cut = len.saturating_sub(1);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn split_indexes(part: &str) -> Option<(&str, Vec<u64>)> {
    let (name, mut rest) = match part.find('[') {
        Some(i) => (&part[..i], &part[i..]),
        None => (part, ""),
    };
    let mut indexes = Vec::new();
    while let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']')?;
        indexes.push(r[..end].trim().parse().ok()?);
        rest = &r[end + 1..];
    }
    (!name.is_empty()).then_some((name.trim(), indexes))
}

/// Records every enumerator of the unit's top-level enumerations.
fn scan_enumerators(ctx: &UnitCtx<'_>, out: &mut FxMap<Box<str>, i64>) -> Result<()> {
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
fn scan_parallel(dw: Dw<'_>, units: &[UnitInfo]) -> Result<Vec<FirstMap>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunks = super::enumerate::chunks(units, threads);
    let scan_chunk = |chunk: &[UnitInfo]| -> Result<FirstMap> {
        let mut map = FirstMap::default();
        for u in chunk {
            if let Ok(ctx) = UnitCtx::new(dw, u) {
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

/// Levenshtein distance, or `None` once it exceeds `limit`.
fn edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= limit).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_with_limit() {
        assert_eq!(edit_distance("task_struct", "task_struct", 2), Some(0));
        assert_eq!(edit_distance("task_strct", "task_struct", 2), Some(1));
        assert_eq!(edit_distance("mm_struct", "task_struct", 2), None);
    }

    #[test]
    fn member_paths_with_indexes() {
        assert_eq!(split_indexes("pids[1]"), Some(("pids", vec![1])));
        assert_eq!(split_indexes("a[1][2]"), Some(("a", vec![1, 2])));
        assert_eq!(split_indexes("sp"), Some(("sp", vec![])));
        assert_eq!(split_indexes("[1]"), None);
        assert_eq!(split_indexes("x[y]"), None);
    }

    #[test]
    fn truncates_like_snprintf() {
        assert_eq!(truncate("abcdef".into(), 4), "abc");
        assert_eq!(truncate("abc".into(), 4), "abc");
        assert_eq!(truncate("abc".into(), usize::MAX), "abc");
    }

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
