//! `kpeek pahole`: struct layouts as data, from DWARF or BTF, in the
//! order pahole prints them. `render/pahole.rs` prints them as pahole does.

use serde::Serialize;

use super::Report;
use crate::debuginfo::layout::{Layout, Model};
use crate::debuginfo::types::TypeId;
use crate::debuginfo::KernelDebugInfo;
use crate::Result;

/// The file `kpeek pahole` reads its types from.
#[derive(Debug, Clone, Copy)]
pub enum TypeFile<'a> {
    /// A vmlinux's DWARF (`--vmlinux`).
    Dwarf(&'a std::path::Path),
    /// A vmlinux's `.BTF` section or a raw BTF blob (`--btf`).
    Btf(&'a std::path::Path),
    /// Types already open (`kpeek rpc` keeps the vmlinux open).
    Opened(&'a KernelDebugInfo),
}

impl<'a> TypeFile<'a> {
    /// Opens it. BTF's alignment inference depends on the cache line size,
    /// as pahole's does.
    /// `slot` keeps a file opened here.
    pub fn open<'s>(
        self,
        cacheline_size: u32,
        slot: &'s mut Option<KernelDebugInfo>,
    ) -> Result<&'s KernelDebugInfo>
    where
        'a: 's,
    {
        let opened = match self {
            TypeFile::Dwarf(p) => KernelDebugInfo::open(p)?,
            TypeFile::Btf(p) => KernelDebugInfo::open_btf(p, cacheline_size)?,
            TypeFile::Opened(d) => return Ok(d),
        };
        Ok(slot.insert(opened))
    }
}

/// One member as pahole's `type__compare_members` sees it: name, bit
/// offset, bit-field width.
type MemberKey = (Option<String>, u32, u8);

/// The members of `id` that `type__compare_members` walks.
fn member_keys(model: &mut Model<'_>, id: TypeId) -> Result<Vec<MemberKey>> {
    Ok(model
        .class(id)?
        .members
        .iter()
        .filter(|m| !m.is_static)
        .map(|m| (m.name.clone(), m.bit_offset, m.bitfield_size))
        .collect())
}

/// `type__compare_members` finding no difference (a name missing on
/// either side is not compared).
fn same_members(a: &[MemberKey], b: &[MemberKey]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            let names = match (&x.0, &y.0) {
                (Some(p), Some(q)) => p == q,
                _ => true,
            };
            names && x.1 == y.1 && x.2 == y.2
        })
}

/// The structs and unions `pahole` with no `-C` prints, in the order it
/// prints them: unit by unit, in DIE order, every named, defined,
/// top-level struct or union that is not equal (pahole's `type__compare`:
/// name, size, member count, member names, bit offsets and bit-field
/// widths) to one printed before.
pub fn pahole_all_types(di: &KernelDebugInfo) -> Result<Vec<TypeId>> {
    use std::collections::HashMap;
    let candidates = di.top_level_aggregates()?;
    let mut model = Model::new(di);
    // (name, size, members) -> the printed types with that header, with
    // their raw member hash.
    type Header<'n> = (&'n [u8], u64, u32);
    let mut printed: HashMap<Header<'_>, Vec<(u64, TypeId)>> = HashMap::new();
    let mut keys: HashMap<TypeId, Vec<MemberKey>> = HashMap::new();
    let mut out = Vec::new();
    for c in &candidates {
        let group = printed
            .entry((&c.name[..], c.byte_size, c.nr_members))
            .or_default();
        if group.iter().any(|&(raw, _)| raw == c.raw_members) {
            continue;
        }
        let mut duplicate = false;
        if !group.is_empty() {
            let mine = member_keys(&mut model, c.id)?;
            for &(_, other) in group.iter() {
                let theirs = match keys.entry(other) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(member_keys(&mut model, other)?)
                    }
                };
                if same_members(theirs, &mine) {
                    duplicate = true;
                    break;
                }
            }
        }
        if !duplicate {
            group.push((c.raw_members, c.id));
            out.push(c.id);
        }
    }
    Ok(out)
}

/// The layouts of `kpeek pahole --format json`.
#[derive(Clone, Debug, Serialize)]
pub struct Layouts {
    /// In the order asked for (or, for every type, pahole's order).
    pub layouts: Vec<Layout>,
}

/// Resolve every name, so that an unknown one fails with
/// [`crate::Error::TypeNotFound`] before anything is printed.
pub fn check_names(di: &KernelDebugInfo, names: &[String]) -> Result<()> {
    for name in names {
        di.find_pahole_type(name)?;
    }
    Ok(())
}

/// The named types' layouts.
pub fn layouts(
    di: &KernelDebugInfo,
    names: &[String],
    cacheline_size: u32,
) -> Result<Report<Layouts>> {
    check_names(di, names)?;
    let layouts = names
        .iter()
        .map(|n| di.layout(n, u64::from(cacheline_size)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Report::complete(Layouts { layouts }))
}

/// Every struct and union's layout, in the order `pahole` with no `-C`
/// prints them ([`pahole_all_types`]).
pub fn all_layouts(di: &KernelDebugInfo, cacheline_size: u32) -> Result<Report<Layouts>> {
    let layouts = pahole_all_types(di)?
        .into_iter()
        .map(|id| {
            let name = di.ty(id)?.name().unwrap_or("").to_string();
            di.layout_of(id, &name, u64::from(cacheline_size))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Report::complete(Layouts { layouts }))
}
