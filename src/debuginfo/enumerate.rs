//! An ordered walk over every named struct and union, as `pahole` with no
//! `-C` visits them.
//!
//! pahole loads the units in `.debug_info` order and, in each, goes through
//! its struct and union types in DIE order. It keeps only types that are
//! children of the unit DIE (`top_level`), have a name and are not
//! declarations. A type equal to one already printed is skipped; "equal"
//! is pahole's `type__compare`: same name, byte size and number of members,
//! and member by member the same name (when both have one), bit offset and
//! bit-field width. Member *types* are not compared.
//!
//! The walk here reads each candidate's header and member attributes in one
//! pass over the units (in parallel), and reduces the member attributes to
//! a hash. Two candidates with the same raw attributes are certainly equal
//! in pahole's sense; the caller settles the rare other cases with the
//! derived offsets.

use std::hash::Hasher;

use gimli::constants as dw;
use gimli::AttributeValue;

use super::hash::FxHasher;
use super::index::{numeric, offset_value, UnitCtx, UnitInfo};
use super::{dwarf_err, Dw, KernelDebugInfo};
use crate::debuginfo::TypeId;
use crate::error::{Error, Result};

/// A named, defined, top-level struct or union.
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    /// Its DIE.
    pub(crate) id: TypeId,
    /// `DW_AT_name`.
    pub(crate) name: Box<[u8]>,
    /// `DW_AT_byte_size` (0 when absent).
    pub(crate) byte_size: u64,
    /// `DW_TAG_member` and `DW_TAG_inheritance` children.
    pub(crate) nr_members: u32,
    /// A hash of the members' names and raw offset and size attributes.
    pub(crate) raw_members: u64,
}

/// Feeds an optional number into a hasher.
fn put(h: &mut FxHasher, v: Option<u64>) {
    match v {
        Some(v) => {
            h.write(&[1]);
            h.write(&v.to_le_bytes());
        }
        None => h.write(&[0]),
    }
}

/// Appends the candidates of one unit, in DIE order.
fn scan_unit(ctx: &UnitCtx<'_>, out: &mut Vec<Aggregate>) -> Result<()> {
    let at = ctx.info.offset;
    let err = |e| dwarf_err(e, at);
    let mut entries = ctx.header.entries_raw(&ctx.abbrevs, None).map_err(err)?;
    let mut depth: isize = 0;
    // The aggregate whose members are being read (at depth 2).
    let mut current: Option<(Aggregate, FxHasher)> = None;
    while !entries.is_empty() {
        let die_off = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation().map_err(err)? else {
            depth -= 1;
            if depth == 1 {
                if let Some((mut agg, h)) = current.take() {
                    agg.raw_members = h.finish();
                    out.push(agg);
                }
            }
            if depth <= 0 {
                break;
            }
            continue;
        };
        let specs = abbrev.attributes();
        let tag = abbrev.tag();
        let children = abbrev.has_children();
        if depth == 1 {
            let is_agg = matches!(
                tag,
                dw::DW_TAG_structure_type | dw::DW_TAG_class_type | dw::DW_TAG_union_type
            );
            if !is_agg && !children {
                entries.skip_attributes(specs).map_err(err)?;
                continue;
            }
            let mut name = None;
            let mut declaration = false;
            let mut byte_size = None;
            let mut sibling = None;
            for spec in specs {
                match spec.name() {
                    dw::DW_AT_name if is_agg => {
                        let v = entries.read_attribute(*spec).map_err(err)?.raw_value();
                        name = ctx.string(&v);
                    }
                    dw::DW_AT_declaration if is_agg => {
                        let v = entries.read_attribute(*spec).map_err(err)?.raw_value();
                        declaration = numeric(&v) != Some(0);
                    }
                    dw::DW_AT_byte_size if is_agg => {
                        let v = entries.read_attribute(*spec).map_err(err)?.raw_value();
                        byte_size = numeric(&v);
                    }
                    dw::DW_AT_sibling if children => {
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
            let wanted = match (is_agg, name, declaration) {
                (true, Some(n), false) => Some(Aggregate {
                    id: TypeId(ctx.info.offset + die_off.0 as u64),
                    name: n.into(),
                    byte_size: byte_size.unwrap_or(0),
                    nr_members: 0,
                    raw_members: 0,
                }),
                _ => None,
            };
            match (wanted, children) {
                (Some(agg), false) => out.push(agg),
                (Some(agg), true) => {
                    current = Some((agg, FxHasher::default()));
                    depth += 1;
                }
                (None, true) => match sibling.filter(|s| s.0 > die_off.0) {
                    Some(s) => {
                        entries = ctx.header.entries_raw(&ctx.abbrevs, Some(s)).map_err(err)?;
                    }
                    None => depth += 1,
                },
                (None, false) => {}
            }
            continue;
        }
        let member = depth == 2
            && matches!(tag, dw::DW_TAG_member | dw::DW_TAG_inheritance)
            && current.is_some();
        if let (true, Some((agg, h))) = (member, current.as_mut()) {
            agg.nr_members += 1;
            let mut name: Option<&[u8]> = None;
            let mut name_at = None;
            let mut vals = [None; 5];
            for spec in specs {
                let slot = match spec.name() {
                    dw::DW_AT_name => {
                        let v = entries.read_attribute(*spec).map_err(err)?.raw_value();
                        // A `.debug_str` offset names one string: hashing
                        // it spares the lookup. Equal names at different
                        // offsets only cost the exact comparison.
                        match v {
                            AttributeValue::DebugStrRef(off) => name_at = Some(off.0 as u64),
                            _ => name = ctx.string(&v),
                        }
                        continue;
                    }
                    dw::DW_AT_data_member_location => 0,
                    dw::DW_AT_data_bit_offset => 1,
                    dw::DW_AT_bit_offset => 2,
                    dw::DW_AT_byte_size => 3,
                    dw::DW_AT_bit_size => 4,
                    _ => {
                        entries
                            .skip_attributes(std::slice::from_ref(spec))
                            .map_err(err)?;
                        continue;
                    }
                };
                let v = entries.read_attribute(*spec).map_err(err)?.raw_value();
                vals[slot] = if slot <= 1 {
                    offset_value(&v)
                } else {
                    numeric(&v)
                };
            }
            h.write(&[u8::from(tag == dw::DW_TAG_inheritance)]);
            match (name_at, name) {
                (Some(at), _) => {
                    h.write(&[2]);
                    h.write(&at.to_le_bytes());
                }
                (None, Some(n)) => {
                    h.write(&[1]);
                    h.write(&(n.len() as u64).to_le_bytes());
                    h.write(n);
                }
                (None, None) => h.write(&[0]),
            }
            for v in vals {
                put(h, v);
            }
        } else {
            entries.skip_attributes(specs).map_err(err)?;
        }
        if children {
            depth += 1;
        }
    }
    Ok(())
}

/// Splits `units` into about `parts` runs of similar byte size.
pub(crate) fn chunks(units: &[UnitInfo], parts: usize) -> Vec<&[UnitInfo]> {
    let total: u64 = units.iter().map(|u| u.end - u.offset).sum();
    let per = total / parts.max(1) as u64 + 1;
    let mut out = Vec::new();
    let mut start = 0;
    let mut acc = 0;
    for (i, u) in units.iter().enumerate() {
        acc += u.end - u.offset;
        if acc >= per {
            out.push(&units[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    if start < units.len() {
        out.push(&units[start..]);
    }
    out
}

impl KernelDebugInfo {
    /// Every named, defined struct and union that is a child of its unit
    /// DIE, in `.debug_info` order, repeats included (see the
    /// [module documentation](self)). A unit that does not parse is
    /// skipped.
    pub(crate) fn top_level_aggregates(&self) -> Result<Vec<Aggregate>> {
        if let Some(btf) = &self.btf {
            // BTF has one namespace: every named struct and union, in id
            // order.
            return Ok(btf.aggregates());
        }
        let units = self.units()?;
        let dw: Dw<'_> = self.dw()?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let scan = |chunk: &[UnitInfo]| -> Vec<Aggregate> {
            let mut out = Vec::new();
            for u in chunk {
                if let Ok(ctx) = UnitCtx::scan(dw, u) {
                    let mut part = Vec::new();
                    if scan_unit(&ctx, &mut part).is_ok() {
                        out.append(&mut part);
                    }
                }
            }
            out
        };
        // Several chunks per thread keep the threads busy to the end.
        let parts = chunks(units, threads * 4);
        if threads <= 1 || parts.len() <= 1 {
            return Ok(parts.into_iter().flat_map(scan).collect());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Vec<(usize, Vec<Aggregate>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&chunk) = parts.get(i) else {
                                break;
                            };
                            mine.push((i, scan(chunk)));
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().map_err(|_| Error::BadDwarf {
                        what: "an enumeration thread panicked".into(),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut all: Vec<(usize, Vec<Aggregate>)> = results.into_iter().flatten().collect();
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().flat_map(|(_, v)| v).collect())
    }
}
