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

use std::sync::Arc;

use gimli::constants as dw;
use gimli::UnitOffset;

use super::index::{key, numeric, offset_value, scan_enumerators, UnitCtx, UnitInfo};
use super::{dwarf_err, KernelDebugInfo};
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
    pub(crate) fn of_tag(tag: dw::DwTag) -> Option<Kind> {
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

impl KernelDebugInfo {
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
            let ctx = UnitCtx::scan(dw, &units[index.next_unit]).ok()?;
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
}
