//! Types from BTF, the kernel's compact type format, translated into the
//! same `Type` model as DWARF, so that layouts, `pahole` output and every
//! member lookup above the debug-info layer work unchanged on it.
//!
//! BTF comes as a raw blob (`/sys/kernel/btf/vmlinux`, or the bytes the
//! kernel keeps between `__start_BTF` and `__stop_BTF`) or as the `.BTF`
//! section of a vmlinux. The blob is a header, a type section and a string
//! section; type ids count from 1 in type-section order, 0 is `void`.
//! A [`TypeId`] of a BTF-backed [`super::KernelDebugInfo`] is the BTF type id.
//!
//! Everything is bounds-checked: the input is untrusted (it may come out of
//! a crash dump), so a damaged blob gives a clear error, never a panic.
//!
//! # What BTF does not say, and what is derived the way pahole does
//!
//! BTF has no alignment attributes and no byte sizes of members. Like
//! `pahole -F btf` (dwarves 1.24 `btf_loader.c`), member byte sizes come
//! from their types, bitfield storage units are the naturally aligned
//! units of the bitfield's type, and an `__aligned__` attribute is
//! *inferred* for a member (or a whole struct) whose offset (or size) is
//! further from the end of the previous member than natural alignment
//! explains; an inferred alignment that fits a cache line boundary becomes
//! the cache line size. BTF also has no parameter-less prototypes' names,
//! no `DW_AT_alignment`, no C++ and no declarations inside functions.
//! `TYPE_TAG`s (clang's `btf_type_tag`) are looked through.

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use super::hash::FxHasher;
use super::types::{Aggregate, EnumType, Kind, Qualifier, RawMember, Type, TypeId};
use crate::error::{Error, Result};

/// The magic number at the start of a BTF blob.
pub const BTF_MAGIC: u16 = 0xeb9f;

const KIND_INT: u8 = 1;
const KIND_PTR: u8 = 2;
const KIND_ARRAY: u8 = 3;
const KIND_STRUCT: u8 = 4;
const KIND_UNION: u8 = 5;
const KIND_ENUM: u8 = 6;
const KIND_FWD: u8 = 7;
const KIND_TYPEDEF: u8 = 8;
const KIND_VOLATILE: u8 = 9;
const KIND_CONST: u8 = 10;
const KIND_RESTRICT: u8 = 11;
const KIND_FUNC: u8 = 12;
const KIND_FUNC_PROTO: u8 = 13;
const KIND_VAR: u8 = 14;
const KIND_DATASEC: u8 = 15;
const KIND_FLOAT: u8 = 16;
const KIND_DECL_TAG: u8 = 17;
const KIND_TYPE_TAG: u8 = 18;
const KIND_ENUM64: u8 = 19;

/// How deep typedef/qualifier chains and nested structs may go.
const MAX_CHAIN: usize = 64;
/// Cache line size pahole uses when it is not told one (and the machine's
/// L1 data cache line size here).
pub const DEFAULT_CACHELINE: u32 = 64;

/// One `struct btf_type` and the bytes that follow it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawType<'a> {
    pub(crate) kind: u8,
    pub(crate) kflag: bool,
    pub(crate) vlen: usize,
    pub(crate) name_off: u32,
    /// `size` or `type`, depending on the kind.
    pub(crate) size_type: u32,
    /// The kind-specific data after the 12-byte header.
    pub(crate) extra: &'a [u8],
}

impl RawType<'_> {
    fn u32_at(&self, off: usize) -> u32 {
        // `extra` was sized for the kind when the type section was walked.
        self.extra
            .get(off..off + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The number of bytes of kind-specific data after a type's header, or
/// `None` for an unknown kind.
fn extra_len(kind: u8, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION => 12 * vlen,
        KIND_ENUM => 8 * vlen,
        KIND_FUNC_PROTO => 8 * vlen,
        KIND_VAR => 4,
        KIND_DATASEC => 12 * vlen,
        KIND_DECL_TAG => 4,
        KIND_ENUM64 => 12 * vlen,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        _ => return None,
    })
}

/// A parsed BTF blob: the bytes, the offset of each type, the name index.
pub(crate) struct Btf {
    /// Where it came from, for error messages.
    origin: PathBuf,
    data: Vec<u8>,
    /// The string section, as a range of `data`.
    strs: std::ops::Range<usize>,
    /// `offsets[id - 1]`: where type `id`'s header is in `data`.
    offsets: Vec<u32>,
    /// First type id of each (kind, name), keyed like the DWARF index.
    names: HashMap<Box<[u8]>, u32, std::hash::BuildHasherDefault<FxHasher>>,
    enumerators: OnceLock<HashMap<Box<str>, i64>>,
    natural: Mutex<HashMap<u32, u32>>,
    cacheline: u32,
    /// Translated types, by id (ids are dense: a vector, not a map).
    translated: Vec<OnceLock<Arc<Type>>>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("origin", &self.origin)
            .field("types", &self.offsets.len())
            .finish_non_exhaustive()
    }
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether `data` starts like a little-endian BTF blob.
pub fn is_btf(data: &[u8]) -> bool {
    data.len() >= 2 && u16::from_le_bytes([data[0], data[1]]) == BTF_MAGIC
}

impl Btf {
    /// Parses a raw BTF blob. `origin` names it in errors.
    pub(crate) fn parse(origin: PathBuf, data: Vec<u8>, cacheline: u32) -> Result<Btf> {
        let bad = |what: String| Error::BadFile {
            path: origin.clone(),
            what: format!("BTF: {what}"),
        };
        if data.len() < 24 {
            return Err(bad(format!(
                "{} bytes is too short for a BTF header",
                data.len()
            )));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != BTF_MAGIC {
            if u16::from_be_bytes([data[0], data[1]]) == BTF_MAGIC {
                return Err(bad("big-endian BTF is not supported".into()));
            }
            return Err(bad(format!("bad magic {magic:#06x} (expected 0xeb9f)")));
        }
        if data[2] != 1 {
            return Err(bad(format!("unsupported BTF version {}", data[2])));
        }
        let field = |i: usize| le32(&data, 4 + 4 * i).unwrap_or(0) as usize;
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(0), field(1), field(2), field(3), field(4));
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(bad(format!("bad header length {hdr_len}")));
        }
        let section = |off: usize, len: usize, what: &str| {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) if e <= data.len() => Ok(s..e),
                _ => Err(bad(format!(
                    "{what} section ({off:#x}+{len:#x} after the header) is past the end ({:#x} bytes)",
                    data.len()
                ))),
            }
        };
        let types = section(type_off, type_len, "type")?;
        let strs = section(str_off, str_len, "string")?;
        if strs.is_empty() || data[strs.start] != 0 {
            return Err(bad(
                "the string section does not start with an empty string".into(),
            ));
        }
        // Walk the type section once: every type's offset.
        let mut offsets = Vec::with_capacity(type_len / 16);
        let mut at = types.start;
        while at < types.end {
            if types.end - at < 12 {
                return Err(bad(format!(
                    "type {} at {:#x}: truncated header",
                    offsets.len() + 1,
                    at - types.start
                )));
            }
            let info = le32(&data, at + 4).unwrap_or(0);
            let kind = ((info >> 24) & 0x1f) as u8;
            let vlen = (info & 0xffff) as usize;
            let Some(extra) = extra_len(kind, vlen) else {
                return Err(bad(format!(
                    "type {} at {:#x}: unknown kind {kind}",
                    offsets.len() + 1,
                    at - types.start
                )));
            };
            let next = at + 12 + extra;
            if next > types.end {
                return Err(bad(format!(
                    "type {} at {:#x}: its {} bytes of data run past the type section",
                    offsets.len() + 1,
                    at - types.start,
                    extra
                )));
            }
            offsets.push(at as u32);
            at = next;
        }
        if data.len() > u32::MAX as usize {
            return Err(bad("larger than 4 GiB".into()));
        }
        let translated = (0..=offsets.len()).map(|_| OnceLock::new()).collect();
        let mut btf = Btf {
            origin,
            data,
            strs,
            offsets,
            translated,
            names: HashMap::default(),
            enumerators: OnceLock::new(),
            natural: Mutex::new(HashMap::new()),
            cacheline,
        };
        btf.index_names();
        Ok(btf)
    }

    fn bad(&self, what: String) -> Error {
        Error::BadFile {
            path: self.origin.clone(),
            what: format!("BTF: {what}"),
        }
    }

    /// How many types there are (the largest id).
    pub(crate) fn len(&self) -> u32 {
        self.offsets.len() as u32
    }

    /// The cache line size the alignment inference uses.
    #[allow(dead_code)]
    pub(crate) fn cacheline(&self) -> u32 {
        self.cacheline
    }

    /// Type `id` (1-based), raw.
    pub(crate) fn raw(&self, id: u32) -> Result<RawType<'_>> {
        let at = id
            .checked_sub(1)
            .and_then(|i| self.offsets.get(i as usize))
            .copied()
            .ok_or_else(|| self.bad(format!("no type {id} (there are {})", self.len())))?
            as usize;
        let info = le32(&self.data, at + 4).unwrap_or(0);
        let kind = ((info >> 24) & 0x1f) as u8;
        let vlen = (info & 0xffff) as usize;
        let extra = extra_len(kind, vlen).unwrap_or(0);
        Ok(RawType {
            kind,
            kflag: info >> 31 != 0,
            vlen,
            name_off: le32(&self.data, at).unwrap_or(0),
            size_type: le32(&self.data, at + 8).unwrap_or(0),
            extra: self.data.get(at + 12..at + 12 + extra).unwrap_or(&[]),
        })
    }

    /// The string at `off` in the string section (`None` for 0 or a bad
    /// offset).
    pub(crate) fn str_bytes(&self, off: u32) -> Option<&[u8]> {
        if off == 0 {
            return None;
        }
        let start = self.strs.start.checked_add(off as usize)?;
        let s = self.data.get(start..self.strs.end)?;
        let end = s.iter().position(|&b| b == 0)?;
        Some(&s[..end])
    }

    fn string(&self, off: u32) -> Option<String> {
        self.str_bytes(off)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    fn index_names(&mut self) {
        let mut names = HashMap::default();
        let mut buf = Vec::new();
        for id in 1..=self.len() {
            let Ok(t) = self.raw(id) else { continue };
            let kind = match t.kind {
                KIND_STRUCT => Kind::Struct,
                KIND_UNION => Kind::Union,
                KIND_ENUM | KIND_ENUM64 => Kind::Enum,
                KIND_TYPEDEF => Kind::Typedef,
                KIND_INT | KIND_FLOAT => Kind::Base,
                _ => continue,
            };
            let Some(name) = self.str_bytes(t.name_off).filter(|n| !n.is_empty()) else {
                continue;
            };
            buf.clear();
            buf.push(kind as u8);
            buf.extend_from_slice(name);
            if !names.contains_key(buf.as_slice()) {
                names.insert(buf.as_slice().into(), id);
            }
        }
        self.names = names;
    }

    /// The first type of a (kind, name).
    pub(crate) fn find(&self, kind: Kind, name: &str) -> Option<TypeId> {
        let mut key = Vec::with_capacity(name.len() + 1);
        key.push(kind as u8);
        key.extend_from_slice(name.as_bytes());
        self.names.get(key.as_slice()).map(|&id| TypeId(id.into()))
    }

    /// Every indexed (kind byte, name).
    pub(crate) fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.names.keys().map(|k| &k[..])
    }

    /// The value of an enumerator, from the first enum that has it.
    pub(crate) fn enumerator(&self, name: &str) -> Option<i64> {
        let map = self.enumerators.get_or_init(|| {
            let mut map = HashMap::new();
            for id in 1..=self.len() {
                let Ok(t) = self.raw(id) else { continue };
                let step = match t.kind {
                    KIND_ENUM => 8,
                    KIND_ENUM64 => 12,
                    _ => continue,
                };
                for i in 0..t.vlen {
                    let Some(n) = self.str_bytes(t.u32_at(i * step)) else {
                        continue;
                    };
                    let lo = t.u32_at(i * step + 4);
                    let v = if t.kind == KIND_ENUM64 {
                        (u64::from(t.u32_at(i * step + 8)) << 32 | u64::from(lo)) as i64
                    } else if t.kflag {
                        // kind_flag: a signed enum.
                        i64::from(lo as i32)
                    } else {
                        i64::from(lo)
                    };
                    let n: Box<str> = String::from_utf8_lossy(n).into();
                    map.entry(n).or_insert(v);
                }
            }
            map
        });
        map.get(name).copied()
    }

    /// A reference to type `id` in the model: `None` for `void`, and
    /// `TYPE_TAG`s looked through.
    fn target(&self, mut id: u32) -> Option<TypeId> {
        for _ in 0..MAX_CHAIN {
            if id == 0 {
                return None;
            }
            match self.raw(id) {
                Ok(t) if t.kind == KIND_TYPE_TAG => id = t.size_type,
                _ => return Some(TypeId(id.into())),
            }
        }
        Some(TypeId(id.into()))
    }

    /// Follows typedefs, qualifiers and type tags from a reference
    /// (`tag__strip_typedefs_and_modifiers`); 0 for `void` or a loop.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHAIN {
            match self.raw(id) {
                Ok(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_CONST | KIND_VOLATILE | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.size_type
                }
                Ok(_) => return id,
                Err(_) => return 0,
            }
        }
        0
    }

    /// pahole's `tag__size` of type `id`.
    fn size(&self, id: u32, depth: usize) -> u64 {
        if depth > MAX_CHAIN {
            return 0;
        }
        let Ok(t) = self.raw(id) else { return 0 };
        match t.kind {
            KIND_PTR | KIND_FUNC_PROTO => 8,
            KIND_INT => u64::from(t.u32_at(0) & 0xff) / 8,
            KIND_FLOAT => u64::from(t.size_type),
            KIND_ENUM | KIND_ENUM64 => match t.size_type {
                0 => 4,
                s => u64::from(s),
            },
            KIND_STRUCT | KIND_UNION => {
                if t.size_type == 1 && t.vlen == 0 {
                    0
                } else {
                    u64::from(t.size_type)
                }
            }
            KIND_ARRAY => self
                .size(t.u32_at(0), depth + 1)
                .wrapping_mul(u64::from(t.u32_at(8))),
            KIND_TYPEDEF | KIND_CONST | KIND_VOLATILE | KIND_RESTRICT | KIND_TYPE_TAG => {
                self.size(t.size_type, depth + 1)
            }
            _ => 0,
        }
    }

    /// pahole's `tag__natural_alignment` of an already stripped type.
    fn natural_alignment(&self, id: u32, depth: usize) -> u32 {
        if depth > MAX_CHAIN {
            return 1;
        }
        let Ok(t) = self.raw(id) else { return 1 };
        let a = match t.kind {
            KIND_PTR => 8,
            KIND_INT => (t.u32_at(0) & 0xff) / 8,
            KIND_FLOAT => t.size_type,
            KIND_ENUM | KIND_ENUM64 => match t.size_type {
                0 => 4,
                s => s,
            },
            KIND_STRUCT | KIND_UNION => {
                if let Some(a) = self.natural.lock().ok().and_then(|m| m.get(&id).copied()) {
                    return a;
                }
                // A struct that contains itself (only in a damaged blob)
                // sees 1 for the inner copy: each struct is computed once,
                // so a cycle cannot make this exponential.
                if let Ok(mut m) = self.natural.lock() {
                    m.insert(id, 1);
                }
                let mut best = 0;
                for i in 0..t.vlen {
                    let stripped = self.strip(t.u32_at(i * 12 + 4));
                    if stripped == 0 {
                        continue;
                    }
                    best = best.max(self.natural_alignment(stripped, depth + 1));
                }
                let best = best.max(1);
                if let Ok(mut m) = self.natural.lock() {
                    m.insert(id, best);
                }
                best
            }
            KIND_ARRAY => {
                let e = self.strip(t.u32_at(0));
                if e == 0 {
                    1
                } else {
                    self.natural_alignment(e, depth + 1)
                }
            }
            _ => 1,
        };
        a.max(1)
    }

    /// dwarves' `class__infer_alignment`.
    fn infer_alignment(&self, byte_offset: u32, natural: u32, smallest_offset: u32) -> u32 {
        let delta = byte_offset.wrapping_sub(smallest_offset);
        let mut alignment = 0u32;
        if delta != 0 && byte_offset.is_multiple_of(2) {
            // The power of two just above `delta`; a shift by 32 wraps to
            // 1 as x86's shift instructions do.
            alignment = 1u32.wrapping_shl(32 - delta.leading_zeros());
        }
        let c = self.cacheline;
        if alignment <= natural || alignment == 1 {
            0
        } else if alignment < c && c.is_multiple_of(alignment) && byte_offset.is_multiple_of(c) {
            c
        } else {
            alignment
        }
    }

    /// Type `id` in the model, translated once.
    pub(crate) fn ty(&self, id: TypeId) -> Result<Arc<Type>> {
        let slot = usize::try_from(id.0)
            .ok()
            .and_then(|i| self.translated.get(i))
            .ok_or_else(|| self.bad(format!("no type {} (there are {})", id.0, self.len())))?;
        if let Some(t) = slot.get() {
            return Ok(t.clone());
        }
        let t = Arc::new(self.to_type(id.0 as u32)?);
        Ok(slot.get_or_init(|| t).clone())
    }

    /// Type `id` in the model [`Type`].
    pub(crate) fn to_type(&self, id: u32) -> Result<Type> {
        let t = self.raw(id)?;
        let name = self.string(t.name_off);
        let target = self.target(t.size_type);
        Ok(match t.kind {
            KIND_INT => Type::Base {
                name,
                byte_size: u64::from(t.u32_at(0) & 0xff) / 8,
            },
            KIND_FLOAT => Type::Base {
                name,
                byte_size: u64::from(t.size_type),
            },
            KIND_PTR => Type::Pointer { target },
            KIND_CONST => Type::Qualified {
                qualifier: Qualifier::Const,
                target,
            },
            KIND_VOLATILE => Type::Qualified {
                qualifier: Qualifier::Volatile,
                target,
            },
            KIND_RESTRICT => Type::Qualified {
                qualifier: Qualifier::Restrict,
                target,
            },
            // Looked through wherever it is referenced; on its own it is
            // its target, like a nameless typedef.
            KIND_TYPE_TAG | KIND_TYPEDEF => Type::Typedef { name, target },
            KIND_ARRAY => Type::Array {
                elem: self.target(t.u32_at(0)),
                dims: vec![t.u32_at(8)],
                is_vector: false,
            },
            KIND_STRUCT | KIND_UNION => {
                let is_union = t.kind == KIND_UNION;
                let (members, alignment) = self.members(id, &t)?;
                let agg = Aggregate {
                    name,
                    byte_size: u64::from(t.size_type),
                    alignment,
                    members,
                };
                if is_union {
                    Type::Union(agg)
                } else {
                    Type::Struct(agg)
                }
            }
            // A forward declaration: a struct (a union with kind_flag)
            // with no size and no members.
            KIND_FWD => {
                let agg = Aggregate {
                    name,
                    byte_size: 0,
                    alignment: 0,
                    members: Vec::new(),
                };
                if t.kflag {
                    Type::Union(agg)
                } else {
                    Type::Struct(agg)
                }
            }
            KIND_ENUM | KIND_ENUM64 => {
                let step = if t.kind == KIND_ENUM { 8 } else { 12 };
                let enumerators = (0..t.vlen)
                    .map(|i| {
                        let n = self.string(t.u32_at(i * step)).unwrap_or_default();
                        let lo = u64::from(t.u32_at(i * step + 4));
                        // dwarves 1.24 keeps a 32-bit enumerator as an
                        // unsigned 32-bit value.
                        let v = if t.kind == KIND_ENUM64 {
                            u64::from(t.u32_at(i * step + 8)) << 32 | lo
                        } else {
                            lo
                        };
                        (n, v)
                    })
                    .collect();
                Type::Enum(EnumType {
                    name,
                    byte_size: match t.size_type {
                        0 => 4,
                        s => u64::from(s),
                    },
                    signed: false,
                    enumerators,
                })
            }
            KIND_FUNC_PROTO => {
                let mut params = Vec::with_capacity(t.vlen);
                let mut variadic = false;
                for i in 0..t.vlen {
                    match t.u32_at(i * 8 + 4) {
                        0 => variadic = true,
                        p => params.push(self.target(p)),
                    }
                }
                Type::Subroutine {
                    ret: target,
                    params,
                    variadic,
                }
            }
            KIND_FUNC | KIND_VAR | KIND_DECL_TAG => Type::Other { name, target },
            KIND_DATASEC => Type::Other { name, target: None },
            k => return Err(self.bad(format!("type {id}: unknown kind {k}"))),
        })
    }

    /// The members of struct or union `id`, and its inferred alignment
    /// (dwarves' `class__fixup_btf_bitfields`).
    fn members(&self, id: u32, t: &RawType<'_>) -> Result<(Vec<RawMember>, u32)> {
        let mut members = Vec::with_capacity(t.vlen);
        let mut smallest_offset = 0u32;
        for i in 0..t.vlen {
            let name = self.string(t.u32_at(i * 12));
            let ty = t.u32_at(i * 12 + 4);
            let raw_offset = t.u32_at(i * 12 + 8);
            let (bit_offset, bitfield_size) = if t.kflag {
                (raw_offset & 0xff_ffff, raw_offset >> 24)
            } else {
                (raw_offset, 0)
            };
            let mut m = RawMember {
                name,
                ty: self.target(ty),
                location: Some(u64::from(bit_offset / 8)),
                ..RawMember::default()
            };
            if bitfield_size != 0 {
                m.data_bit_offset = Some(u64::from(bit_offset));
                m.bit_size = Some(u64::from(bitfield_size));
            }
            let stripped = self.strip(ty);
            if stripped != 0 {
                let byte_size = self.size(stripped, 0) as u32;
                if byte_size != 0 {
                    let kind = self.raw(stripped)?.kind;
                    let mut byte_offset = bit_offset / 8;
                    if bitfield_size != 0
                        && matches!(kind, KIND_INT | KIND_FLOAT | KIND_ENUM | KIND_ENUM64)
                    {
                        let bit_size = byte_size.wrapping_mul(8);
                        byte_offset = (bit_offset / bit_size).wrapping_mul(bit_size) / 8;
                    }
                    m.alignment = self.infer_alignment(
                        byte_offset,
                        self.natural_alignment(stripped, 0),
                        smallest_offset,
                    );
                    smallest_offset = byte_offset.wrapping_add(byte_size);
                }
            }
            members.push(m);
        }
        let alignment =
            self.infer_alignment(t.size_type, self.natural_alignment(id, 0), smallest_offset);
        Ok((members, alignment))
    }

    /// The named structs and unions, in id order, for `pahole --all`
    /// (FWDs are declarations and are left out); the member hash covers
    /// names and offsets.
    pub(crate) fn aggregates(&self) -> Vec<super::enumerate::Aggregate> {
        let mut out = Vec::new();
        for id in 1..=self.len() {
            let Ok(t) = self.raw(id) else { continue };
            if !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
                continue;
            }
            let Some(name) = self.str_bytes(t.name_off).filter(|n| !n.is_empty()) else {
                continue;
            };
            let mut h = FxHasher::default();
            for i in 0..t.vlen {
                h.write(self.str_bytes(t.u32_at(i * 12)).unwrap_or(b""));
                h.write(&[0]);
                h.write(&t.u32_at(i * 12 + 8).to_le_bytes());
                h.write(&[u8::from(t.kflag)]);
            }
            out.push(super::enumerate::Aggregate {
                id: TypeId(id.into()),
                name: name.into(),
                byte_size: u64::from(t.size_type),
                nr_members: t.vlen as u32,
                raw_members: h.finish(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob from (name, info, size_type, extra) types.
    fn blob(types: &[(u32, u32, u32, Vec<u32>)], strs: &[u8]) -> Vec<u8> {
        let mut ty = Vec::new();
        for (name, info, st, extra) in types {
            for v in [*name, *info, *st].iter().chain(extra) {
                ty.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut d = Vec::new();
        d.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        d.push(1);
        d.push(0);
        for v in [
            24u32,
            0,
            ty.len() as u32,
            ty.len() as u32,
            strs.len() as u32,
        ] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        d.extend_from_slice(&ty);
        d.extend_from_slice(strs);
        d
    }

    fn info(kind: u8, vlen: u32, kflag: bool) -> u32 {
        (u32::from(kflag) << 31) | (u32::from(kind) << 24) | vlen
    }

    // Strings: 1 "int", 5 "s", 7 "a", 9 "b", 11 "c", 13 "e", 15 "X".
    const STRS: &[u8] = b"\0int\0s\0a\0b\0c\0e\0X\0";

    fn sample() -> Btf {
        let types = vec![
            // 1: int, 32 bits, signed
            (1, info(KIND_INT, 0, false), 4, vec![(1 << 24) | 32]),
            // 2: struct s { int a; int b:3; int c:5; } kind_flag bitfields
            (
                5,
                info(KIND_STRUCT, 3, true),
                8,
                vec![7, 1, 0, 9, 1, (3 << 24) | 32, 11, 1, (5 << 24) | 35],
            ),
            // 3: enum e { X = -1 } signed
            (13, info(KIND_ENUM, 1, true), 4, vec![15, u32::MAX]),
            // 4: int *
            (0, info(KIND_PTR, 0, false), 1, vec![]),
            // 5: int[7]
            (0, info(KIND_ARRAY, 0, false), 0, vec![1, 1, 7]),
        ];
        Btf::parse("test".into(), blob(&types, STRS), 64).unwrap()
    }

    #[test]
    fn parses_types_and_bitfields() {
        let b = sample();
        assert_eq!(b.len(), 5);
        assert_eq!(b.find(Kind::Struct, "s"), Some(TypeId(2)));
        assert_eq!(b.find(Kind::Base, "int"), Some(TypeId(1)));
        let Type::Struct(s) = b.to_type(2).unwrap() else {
            panic!("not a struct")
        };
        assert_eq!(s.byte_size, 8);
        assert_eq!(s.members[1].name.as_deref(), Some("b"));
        assert_eq!(s.members[1].data_bit_offset, Some(32));
        assert_eq!(s.members[1].bit_size, Some(3));
        assert_eq!(s.members[2].data_bit_offset, Some(35));
        assert_eq!(b.enumerator("X"), Some(-1));
        assert_eq!(b.size(5, 0), 28);
        assert!(matches!(
            b.to_type(4).unwrap(),
            Type::Pointer {
                target: Some(TypeId(1))
            }
        ));
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let good = blob(&[(1, info(KIND_INT, 0, false), 4, vec![32])], STRS);
        // Every truncation fails cleanly or parses a shorter blob.
        for len in 0..good.len() {
            let _ = Btf::parse("t".into(), good[..len].to_vec(), 64);
        }
        // Every single-byte corruption: no panic, and lookups stay safe.
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x80, 0x13] {
                let mut d = good.clone();
                d[i] = v;
                if let Ok(b) = Btf::parse("t".into(), d, 64) {
                    for id in 0..3 {
                        let _ = b.to_type(id);
                        let _ = b.size(id, 0);
                    }
                }
            }
        }
        let err = Btf::parse("t".into(), b"\x9f\xeb\x01\x00".to_vec(), 64).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
        let mut bad_kind = good.clone();
        bad_kind[24 + 7] = 30 & 0x1f; // kind 30
        let err = Btf::parse("t".into(), bad_kind, 64).unwrap_err();
        assert!(err.to_string().contains("unknown kind"), "{err}");
        let mut be = good;
        be[0] = 0xeb;
        be[1] = 0x9f;
        let err = Btf::parse("t".into(), be, 64).unwrap_err();
        assert!(err.to_string().contains("big-endian"), "{err}");
    }

    #[test]
    fn alignment_inference_like_pahole() {
        let b = sample();
        // A member 4 bytes after the previous one ends, at an even offset:
        // the next power of two above 4 is 8, more than int's 4.
        assert_eq!(b.infer_alignment(8, 4, 4), 8);
        // Natural placement: nothing.
        assert_eq!(b.infer_alignment(4, 4, 4), 0);
        // On a cache line boundary: the cache line size.
        assert_eq!(b.infer_alignment(64, 8, 40), 64);
        // Odd offsets are never inferred.
        assert_eq!(b.infer_alignment(9, 1, 2), 0);
    }
}
