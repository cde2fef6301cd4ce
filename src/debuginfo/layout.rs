//! Struct layouts the way pahole computes them: member offsets and sizes,
//! bitfield positions, holes, padding, natural alignment and inferred
//! `__packed__`.
//!
//! The private `Model` mirrors the facts dwarves 1.24 derives from DWARF
//! (`class_member__cache_byte_size` in `dwarf_loader.c`,
//! `class__find_holes`, `tag__natural_alignment` and
//! `class__infer_packed_attributes` in `dwarves.c`), including the widths
//! of its counters, because `kpeek pahole` must print the same numbers.
//! Like pahole, inference is lazy and stateful: a struct printed inside
//! another may be marked packed by its container.
//!
//! [`Layout`] is the plain, serialisable summary of one struct or union for
//! `kpeek pahole --format json`.

use std::collections::HashMap;

use serde::Serialize;

use super::types::{DepthGuard, Type, TypeId};
use super::KernelDebugInfo;
use crate::error::Result;

/// One member, with pahole's derived fields.
#[derive(Debug, Clone)]
pub(crate) struct PMember {
    pub(crate) name: Option<String>,
    pub(crate) ty: Option<TypeId>,
    pub(crate) inheritance: bool,
    pub(crate) is_static: bool,
    pub(crate) byte_offset: u32,
    pub(crate) bit_offset: u32,
    pub(crate) bit_size: u32,
    pub(crate) byte_size: u64,
    pub(crate) bitfield_offset: i8,
    pub(crate) bitfield_size: u8,
    pub(crate) alignment: u32,
    pub(crate) hole: u16,
    pub(crate) bit_hole: u8,
}

/// A struct or union, with pahole's derived fields.
#[derive(Debug, Clone)]
pub(crate) struct PClass {
    pub(crate) is_union: bool,
    pub(crate) name: Option<String>,
    pub(crate) size: u32,
    pub(crate) alignment: u32,
    pub(crate) nr_members: u16,
    pub(crate) members: Vec<PMember>,
    pub(crate) pre_hole: u16,
    pub(crate) pre_bit_hole: u8,
    pub(crate) padding: u16,
    pub(crate) bit_padding: u8,
    pub(crate) nr_holes: u8,
    pub(crate) nr_bit_holes: u8,
    holes_searched: bool,
    pub(crate) is_packed: bool,
    packed_inferred: bool,
    natural_alignment: u16,
}

/// The pahole view of the types one command looks at.
pub(crate) struct Model<'a> {
    pub(crate) di: &'a KernelDebugInfo,
    classes: HashMap<TypeId, PClass>,
}

impl<'a> Model<'a> {
    pub(crate) fn new(di: &'a KernelDebugInfo) -> Model<'a> {
        Model {
            di,
            classes: HashMap::new(),
        }
    }

    /// The class for a struct or union type, built on first use.
    pub(crate) fn class(&mut self, id: TypeId) -> Result<&mut PClass> {
        if !self.classes.contains_key(&id) {
            let c = self.build(id)?;
            self.classes.insert(id, c);
        }
        Ok(self.classes.get_mut(&id).expect("inserted just above"))
    }

    /// Whether `id` is a struct (`tag__is_struct`).
    pub(crate) fn is_struct(&self, id: Option<TypeId>) -> bool {
        id.and_then(|i| self.di.ty(i).ok())
            .is_some_and(|t| t.is_struct())
    }

    fn build(&self, id: TypeId) -> Result<PClass> {
        let t = self.di.ty(id)?;
        let (agg, is_union) = match &*t {
            Type::Struct(a) => (a, false),
            Type::Union(a) => (a, true),
            _ => {
                return Err(crate::Error::BadDwarf {
                    what: format!(".debug_info+{:#x} is not a struct or union", id.0),
                })
            }
        };
        let mut members = Vec::with_capacity(agg.members.len());
        let mut nr_members = 0u16;
        for raw in &agg.members {
            let has_bit_offset = raw.data_bit_offset.is_some();
            let is_static = !has_bit_offset && raw.location.is_none() && !is_union;
            let mut m = PMember {
                name: raw.name.clone(),
                ty: raw.ty,
                inheritance: raw.inheritance,
                is_static,
                byte_offset: raw.location.unwrap_or(0) as u32,
                bit_offset: 0,
                bit_size: 0,
                byte_size: raw.byte_size.unwrap_or(0),
                bitfield_offset: raw.bit_offset_attr.unwrap_or(0) as i8,
                bitfield_size: raw.bit_size.unwrap_or(0) as u8,
                alignment: raw.alignment,
                hole: 0,
                bit_hole: 0,
            };
            m.bit_offset = match raw.data_bit_offset {
                Some(b) => b as u32,
                None => m.byte_offset.wrapping_mul(8),
            };
            if !is_static {
                self.cache_byte_size(&mut m, has_bit_offset)?;
                nr_members = nr_members.wrapping_add(1);
            }
            members.push(m);
        }
        Ok(PClass {
            is_union,
            name: agg.name.clone(),
            size: agg.byte_size as u32,
            alignment: agg.alignment,
            nr_members,
            members,
            pre_hole: 0,
            pre_bit_hole: 0,
            padding: 0,
            bit_padding: 0,
            nr_holes: 0,
            nr_bit_holes: 0,
            holes_searched: false,
            is_packed: false,
            packed_inferred: false,
            natural_alignment: 0,
        })
    }

    /// `class_member__cache_byte_size`.
    fn cache_byte_size(&self, m: &mut PMember, has_bit_offset: bool) -> Result<()> {
        if m.bitfield_size == 0 {
            if m.byte_size == 0 {
                m.byte_size = self.di.size_of(m.ty)?;
            }
            m.bit_size = (m.byte_size as u32).wrapping_mul(8);
            return Ok(());
        }
        if m.byte_size == 0 {
            let stripped = self.di.strip(m.ty)?;
            m.byte_size = self.di.size_of(stripped)?;
            if m.byte_size == 0 {
                let bits = match stripped.map(|s| self.di.ty(s)).transpose()?.as_deref() {
                    Some(Type::Enum(e)) => e.byte_size * 8,
                    Some(Type::Base { byte_size, .. }) => byte_size * 8,
                    _ => 0,
                };
                m.byte_size = bits.div_ceil(8) * 8;
            }
        }
        m.bit_size = (m.byte_size as u32).wrapping_mul(8);
        if m.byte_size == 0 {
            m.bitfield_offset = 0;
            return Ok(());
        }
        if !has_bit_offset {
            // Little endian: DW_AT_bit_offset counts from the MSB.
            m.bitfield_offset = (m
                .bit_size
                .wrapping_sub(m.bitfield_offset as i32 as u32)
                .wrapping_sub(u32::from(m.bitfield_size))) as i8;
            m.bit_offset = m
                .byte_offset
                .wrapping_mul(8)
                .wrapping_add(m.bitfield_offset as i32 as u32);
        } else {
            m.byte_offset = m.bit_offset / 8;
            m.bitfield_offset = m.bit_offset.wrapping_sub(m.byte_offset * 8) as i8;
        }
        if m.bitfield_offset < 0 {
            m.bitfield_offset = (i32::from(m.bitfield_offset) + m.bit_size as i32) as i8;
            m.byte_offset = m.byte_offset.wrapping_sub(m.byte_size as u32);
            m.bit_offset = m
                .byte_offset
                .wrapping_mul(8)
                .wrapping_add(m.bitfield_offset as i32 as u32);
        }
        m.bitfield_offset = (m.bitfield_offset as i64
            + ((u64::from(m.byte_offset) % m.byte_size) * 8) as i64)
            as i8;
        m.byte_offset = m
            .bit_offset
            .checked_div(m.bit_size)
            .map_or(0, |units| units * m.bit_size / 8);
        if (m.bitfield_offset as i32 as u32) >= m.bit_size {
            m.bitfield_offset = (m.bitfield_offset as i32 as u32).wrapping_sub(m.bit_size) as i8;
            m.byte_offset = m.byte_offset.wrapping_add(m.byte_size as u32);
        }
        Ok(())
    }

    /// `class__find_holes`: holes after each member, padding at the end.
    pub(crate) fn find_holes(&mut self, id: TypeId) -> Result<()> {
        let c = self.class(id)?;
        if c.is_union || c.holes_searched {
            return Ok(());
        }
        c.nr_holes = 0;
        c.nr_bit_holes = 0;
        let size = c.size;
        let mut cur_bitfield_end: u32 = size.wrapping_mul(8);
        let mut cur_bitfield_size: u32 = 0;
        let mut last_seen_bit: u32 = 0;
        let mut in_bitfield = false;
        let mut last: Option<usize> = None;
        for i in 0..c.members.len() {
            let pos = &c.members[i];
            if pos.is_static {
                continue;
            }
            let bit_start = pos.bit_offset;
            let bit_end = if pos.bitfield_size != 0 {
                bit_start.wrapping_add(u32::from(pos.bitfield_size))
            } else {
                bit_start.wrapping_add((pos.byte_size as u32).wrapping_mul(8))
            };
            let mut bit_holes: u32 = 0;
            let mut byte_holes: u32 = 0;
            if in_bitfield {
                let bitfield_end = bit_start.min(cur_bitfield_end);
                bit_holes = bitfield_end.wrapping_sub(last_seen_bit);
                last_seen_bit = bitfield_end;
            }
            if pos.bitfield_size != 0 {
                let aligned_start = pos.byte_offset.wrapping_mul(8);
                if last_seen_bit < aligned_start && aligned_start <= bit_start {
                    byte_holes = pos.byte_offset.wrapping_sub(last_seen_bit / 8);
                    last_seen_bit = aligned_start;
                }
                bit_holes = bit_holes.wrapping_add(bit_start.wrapping_sub(last_seen_bit));
            } else {
                byte_holes = (bit_start / 8).wrapping_sub(last_seen_bit / 8);
            }
            last_seen_bit = bit_end;
            if pos.bitfield_size != 0 {
                in_bitfield = true;
                if bit_end > cur_bitfield_end || pos.bit_size > cur_bitfield_size {
                    cur_bitfield_size = pos.bit_size;
                    cur_bitfield_end = pos
                        .byte_offset
                        .wrapping_mul(8)
                        .wrapping_add(cur_bitfield_size);
                    if bit_end > cur_bitfield_end {
                        cur_bitfield_end = cur_bitfield_end.wrapping_add(cur_bitfield_size);
                    }
                }
            } else {
                in_bitfield = false;
                cur_bitfield_size = 0;
                cur_bitfield_end = bit_end;
            }
            match last {
                Some(l) => {
                    c.members[l].hole = byte_holes as u16;
                    c.members[l].bit_hole = bit_holes as u8;
                }
                None => {
                    c.pre_hole = byte_holes as u16;
                    c.pre_bit_hole = bit_holes as u8;
                }
            }
            if bit_holes != 0 {
                c.nr_bit_holes = c.nr_bit_holes.wrapping_add(1);
            }
            if byte_holes != 0 {
                c.nr_holes = c.nr_holes.wrapping_add(1);
            }
            last = Some(i);
        }
        if in_bitfield {
            let bitfield_end = size.wrapping_mul(8).min(cur_bitfield_end);
            c.bit_padding = bitfield_end.wrapping_sub(last_seen_bit) as u8;
            last_seen_bit = bitfield_end;
        } else {
            c.bit_padding = 0;
        }
        c.padding = size.wrapping_sub(last_seen_bit / 8) as u16;
        c.holes_searched = true;
        Ok(())
    }

    /// `tag__natural_alignment` of an already stripped type.
    pub(crate) fn natural_alignment(&mut self, id: Option<TypeId>) -> Result<u64> {
        let _guard = DepthGuard::enter()?;
        let Some(id) = id else { return Ok(1) };
        let t = self.di.ty(id)?;
        let a = match &*t {
            Type::Pointer { .. } => 8,
            Type::Base { byte_size, .. } => *byte_size,
            Type::Enum(e) => e.byte_size,
            Type::Struct(_) | Type::Union(_) => u64::from(self.type_natural_alignment(id)?),
            Type::Array { elem, .. } => {
                let e = self.di.strip(*elem)?;
                if e.is_some() {
                    self.natural_alignment(e)?
                } else {
                    1
                }
            }
            _ => 1,
        };
        Ok(if a == 0 { 1 } else { a })
    }

    fn type_natural_alignment(&mut self, id: TypeId) -> Result<u16> {
        let c = self.class(id)?;
        if c.natural_alignment != 0 {
            return Ok(c.natural_alignment);
        }
        let tys: Vec<Option<TypeId>> = c
            .members
            .iter()
            .filter(|m| !m.is_static)
            .map(|m| m.ty)
            .collect();
        let mut best = 0u16;
        for ty in tys {
            let Some(stripped) = self.di.strip(ty)? else {
                continue;
            };
            let a = self.natural_alignment(Some(stripped))? as u16;
            best = best.max(a);
        }
        self.class(id)?.natural_alignment = best;
        Ok(best)
    }

    /// `type__check_structs_at_unnatural_alignments`.
    fn check_structs_at_unnatural_alignments(&mut self, id: TypeId) -> Result<()> {
        let members: Vec<(Option<TypeId>, u32)> = self
            .class(id)?
            .members
            .iter()
            .map(|m| (m.ty, m.byte_offset))
            .collect();
        for (ty, byte_offset) in members {
            let Some(mt) = self.di.strip(ty)? else {
                continue;
            };
            if !self.is_struct(Some(mt)) {
                continue;
            }
            let na = self.natural_alignment(Some(mt))?;
            if u64::from(byte_offset) % na != 0 {
                let c = self.class(mt)?;
                c.is_packed = true;
                c.packed_inferred = true;
            }
        }
        Ok(())
    }

    /// `class__infer_packed_attributes`: is this struct `__packed__`?
    pub(crate) fn infer_packed(&mut self, id: TypeId) -> Result<bool> {
        if !self.is_struct(Some(id)) {
            return Ok(false);
        }
        {
            let c = self.class(id)?;
            if c.packed_inferred {
                return Ok(c.is_packed);
            }
        }
        self.find_holes(id)?;
        let (padding, nr_holes) = {
            let c = self.class(id)?;
            (c.padding, c.nr_holes)
        };
        let packed = if padding != 0 || nr_holes != 0 {
            self.check_structs_at_unnatural_alignments(id)?;
            false
        } else {
            let (members, size, alignment) = {
                let c = self.class(id)?;
                let m: Vec<(Option<TypeId>, u32)> = c
                    .members
                    .iter()
                    .filter(|m| !m.is_static)
                    .map(|m| (m.ty, m.byte_offset))
                    .collect();
                (m, c.size, c.alignment)
            };
            let mut max_natural_alignment: u16 = 1;
            let mut packed = None;
            for (ty, byte_offset) in members {
                let mt = self.di.strip(ty)?;
                let na = self.natural_alignment(mt)?;
                if na == 1 {
                    continue;
                }
                max_natural_alignment = max_natural_alignment.max(na as u16);
                if u64::from(byte_offset) % na == 0 {
                    continue;
                }
                packed = Some(true);
                break;
            }
            packed.unwrap_or(
                (max_natural_alignment != 1 && alignment == 1)
                    || size % u32::from(max_natural_alignment) != 0,
            )
        };
        let c = self.class(id)?;
        c.is_packed = packed;
        c.packed_inferred = true;
        Ok(packed)
    }

    /// `union__infer_packed_attributes`: structs in a union whose alignment
    /// does not divide the union's size must be packed.
    pub(crate) fn union_infer_packed(&mut self, id: TypeId) -> Result<()> {
        let (size, tys) = {
            let c = self.class(id)?;
            if c.packed_inferred {
                return Ok(());
            }
            (c.size, c.members.iter().map(|m| m.ty).collect::<Vec<_>>())
        };
        for ty in tys {
            let mt = self.di.strip(ty)?;
            if !self.is_struct(mt) {
                continue;
            }
            let na = self.natural_alignment(mt)?;
            if u64::from(size) % na != 0 {
                if let Some(mt) = mt {
                    let c = self.class(mt)?;
                    c.is_packed = true;
                    c.packed_inferred = true;
                }
            }
        }
        self.class(id)?.packed_inferred = true;
        Ok(())
    }
}

/// The layout of a struct or union, for JSON output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// `"struct"` or `"union"`.
    pub kind: &'static str,
    /// The type's name (`None` for an anonymous one).
    pub name: Option<String>,
    /// `sizeof`, in bytes.
    pub size: u64,
    /// How many cachelines it spans.
    pub cachelines: u64,
    /// The cacheline size used.
    pub cacheline_size: u64,
    /// `DW_AT_alignment`, when the source forces one.
    pub forced_alignment: Option<u32>,
    /// Whether pahole would print `__attribute__((__packed__))`.
    pub packed: bool,
    /// The members, in declaration order.
    pub members: Vec<LayoutMember>,
    /// Byte holes between members.
    pub holes: u32,
    /// Total bytes in holes.
    pub sum_holes: u64,
    /// Bit holes between bitfields.
    pub bit_holes: u32,
    /// Total bits in bit holes.
    pub sum_bit_holes: u64,
    /// Bytes of padding at the end.
    pub padding: u64,
    /// Bits of padding after a trailing bitfield.
    pub bit_padding: u64,
}

/// One member of a [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayoutMember {
    /// The member's name (`None` for an anonymous struct or union).
    pub name: Option<String>,
    /// Its C type, as pahole spells it.
    pub type_name: String,
    /// Bytes from the start of the outermost type.
    pub offset: u64,
    /// Size in bytes (of the storage unit, for a bitfield).
    pub size: u64,
    /// For a bitfield: the first bit within the storage unit.
    pub bit_offset: Option<u32>,
    /// For a bitfield: its width.
    pub bit_size: Option<u32>,
    /// `DW_AT_alignment` on the member.
    pub forced_alignment: Option<u32>,
    /// The cacheline the member starts in.
    pub cacheline: u64,
    /// Bytes of hole after this member.
    pub hole_after: u32,
    /// Bits of hole after this bitfield.
    pub bit_hole_after: u32,
    /// For an anonymous struct or union: its members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<LayoutMember>>,
}

impl KernelDebugInfo {
    /// The layout of the struct or union `pahole -C name` would show.
    pub fn layout(&self, name: &str, cacheline_size: u64) -> Result<Layout> {
        let id = self.find_pahole_type(name)?;
        self.layout_of(id, name, cacheline_size)
    }

    /// The layout of the struct or union (or typedef of one) at `id`;
    /// `name` is what an error calls it.
    pub fn layout_of(&self, id: TypeId, name: &str, cacheline_size: u64) -> Result<Layout> {
        let mut model = Model::new(self);
        let agg = self.strip(Some(id))?.unwrap_or(id);
        let t = self.ty(agg)?;
        if t.aggregate().is_none() {
            return Err(crate::Error::TypeNotFound {
                name: format!("{name} (not a struct or union)"),
                suggestions: Vec::new(),
            });
        }
        model.find_holes(agg)?;
        let packed = model.infer_packed(agg)?;
        let members = layout_members(&mut model, agg, 0, cacheline_size.max(1))?;
        let c = model.class(agg)?.clone();
        let cacheline_size = cacheline_size.max(1);
        let size = self.size_of(Some(agg))?;
        let (holes, sum_holes) = c
            .members
            .iter()
            .map(|m| u64::from(m.hole))
            .chain(std::iter::once(u64::from(c.pre_hole)))
            .filter(|&h| h != 0)
            .fold((0u32, 0u64), |(n, s), h| (n + 1, s + h));
        let (bit_holes, sum_bit_holes) = c
            .members
            .iter()
            .map(|m| u64::from(m.bit_hole))
            .chain(std::iter::once(u64::from(c.pre_bit_hole)))
            .filter(|&h| h != 0)
            .fold((0u32, 0u64), |(n, s), h| (n + 1, s + h));
        Ok(Layout {
            kind: if c.is_union { "union" } else { "struct" },
            name: c.name.clone(),
            size,
            cachelines: size.div_ceil(cacheline_size),
            cacheline_size,
            forced_alignment: (c.alignment != 0).then_some(c.alignment),
            packed,
            members,
            holes,
            sum_holes,
            bit_holes,
            sum_bit_holes,
            padding: u64::from(c.padding),
            bit_padding: u64::from(c.bit_padding),
        })
    }
}

fn layout_members(
    model: &mut Model<'_>,
    id: TypeId,
    base: u64,
    cacheline_size: u64,
) -> Result<Vec<LayoutMember>> {
    let _guard = DepthGuard::enter()?;
    model.find_holes(id)?;
    let members = model.class(id)?.members.clone();
    let mut out = Vec::with_capacity(members.len());
    for m in members.iter().filter(|m| !m.is_static) {
        let offset = base + u64::from(m.byte_offset);
        let inner = match m.ty {
            Some(t) if m.name.is_none() => match &*model.di.ty(t)? {
                Type::Struct(a) | Type::Union(a) if a.name.is_none() => Some(t),
                _ => None,
            },
            _ => None,
        };
        let nested = match inner {
            Some(t) => Some(layout_members(model, t, offset, cacheline_size)?),
            None => None,
        };
        let bitfield = m.bitfield_size != 0;
        out.push(LayoutMember {
            name: m.name.clone(),
            type_name: model.di.type_name(m.ty),
            offset,
            size: m.byte_size,
            bit_offset: bitfield.then_some(m.bitfield_offset as u8 as u32),
            bit_size: bitfield.then_some(u32::from(m.bitfield_size)),
            forced_alignment: (m.alignment != 0).then_some(m.alignment),
            cacheline: offset / cacheline_size,
            hole_after: u32::from(m.hole),
            bit_hole_after: u32::from(m.bit_hole),
            members: nested,
        });
    }
    Ok(out)
}
