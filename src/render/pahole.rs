//! `pahole -C` output, byte for byte as dwarves 1.24 prints it, and the
//! whole listing of `pahole` with no `-C` ([`render_pahole_all`]).
//!
//! The functions here follow the shape of `dwarves_fprintf.c` (the facts
//! of the format: column arithmetic, when a comment or blank line appears,
//! which counters go in the summary), written anew in Rust. Column widths
//! in pahole are computed from how many bytes a member line has printed so
//! far, so each function appends to one `String` and the callers measure
//! what was appended.
//!
//! One file of about 950 lines on purpose: it is one printer, read side by
//! side with `dwarves_fprintf.c`, whose functions call each other in
//! cycles (members print types, types print members); the data it prints
//! is built in `report/pahole.rs` and `debuginfo/layout.rs`.

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;

use crate::debuginfo::layout::{Model, PMember};
use crate::debuginfo::types::{DepthGuard, Qualifier, Type, TypeId};
use crate::debuginfo::KernelDebugInfo;
use crate::error::{Error, Result};

/// How to print.
#[derive(Debug, Clone)]
pub struct PaholeOptions {
    /// Offsets and sizes in hexadecimal (`--hex`).
    pub hex: bool,
    /// Expand named struct, union and typedef members inline (`-E`).
    pub expand_types: bool,
    /// The cacheline size for boundary markers (pahole asks the CPU; 64 on
    /// x86_64).
    pub cacheline_size: u32,
}

impl Default for PaholeOptions {
    fn default() -> Self {
        PaholeOptions {
            hex: false,
            expand_types: false,
            cacheline_size: 64,
        }
    }
}

const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";
/// pahole clamps indentation to `sizeof(tabs) - 1`.
const MAX_INDENT: usize = 16;

fn tabs(n: usize) -> &'static str {
    &TABS[..n.min(TABS.len())]
}

/// `printf("%-*s", w, s)`: left-justified; a negative width also left-justifies.
fn left(s: &str, w: i32) -> String {
    format!("{s:<width$}", width = w.unsigned_abs() as usize)
}

/// `printf("%*s", w, s)`: right-justified, or left-justified for a negative width.
fn right(s: &str, w: i32) -> String {
    if w < 0 {
        left(s, w)
    } else {
        format!("{s:>width$}", width = w as usize)
    }
}

/// `printf("%*u")` or `printf("%#*x")`.
fn num(v: u64, w: i32, hex: bool) -> String {
    let s = if hex {
        if v == 0 {
            "0".to_string()
        } else {
            format!("{v:#x}")
        }
    } else {
        v.to_string()
    };
    right(&s, w)
}

fn plural(n: u64) -> &'static str {
    if n != 1 {
        "s"
    } else {
        ""
    }
}

/// pahole's `struct conf_fprintf`, the parts that matter here.
#[derive(Clone)]
struct Conf {
    indent: usize,
    type_spacing: i32,
    name_spacing: i32,
    base_offset: u32,
    rel_offset: bool,
    cachelinep: Option<Rc<Cell<u32>>>,
    prefix: Option<String>,
    suffix: Option<String>,
    emit_stats: bool,
    suppress_offset_comment: bool,
    union_member: bool,
    first_member: bool,
    last_member: bool,
    hex: bool,
    expand_types: bool,
    cacheline_size: u32,
}

struct Printer<'a, 'm> {
    di: &'a KernelDebugInfo,
    model: &'m mut Model<'a>,
}

/// Prints the named types the way `pahole -C a,b,c` does: each one the
/// first struct, union, typedef or enum of that name, followed by `;` and
/// a newline.
pub fn render_pahole(
    di: &KernelDebugInfo,
    names: &[String],
    opts: &PaholeOptions,
    out: &mut (impl Write + ?Sized),
) -> Result<()> {
    let mut model = Model::new(di);
    for name in names {
        let id = di.find_pahole_type(name)?;
        let mut s = String::new();
        Printer {
            di,
            model: &mut model,
        }
        .tag_fprintf(id, opts, &mut s)?;
        s.push_str(";\n");
        out.write_all(s.as_bytes()).map_err(|source| Error::Io {
            path: "<stdout>".into(),
            source,
        })?;
    }
    Ok(())
}

/// Prints every struct and union the way `pahole` with no `-C` does
/// (see [`pahole_all_types`]).
pub fn render_pahole_all(
    di: &KernelDebugInfo,
    opts: &PaholeOptions,
    out: &mut (impl Write + ?Sized),
) -> Result<()> {
    let ids = crate::report::pahole::pahole_all_types(di)?;
    let mut model = Model::new(di);
    let mut s = String::with_capacity(1 << 17);
    for id in ids {
        Printer {
            di,
            model: &mut model,
        }
        .tag_fprintf(id, opts, &mut s)?;
        s.push_str(";\n");
        if s.len() >= 1 << 16 {
            write_out(out, &s)?;
            s.clear();
        }
    }
    write_out(out, &s)
}

fn write_out(out: &mut (impl Write + ?Sized), s: &str) -> Result<()> {
    out.write_all(s.as_bytes()).map_err(|source| Error::Io {
        path: "<stdout>".into(),
        source,
    })
}

impl Printer<'_, '_> {
    fn ty(&self, id: TypeId) -> Result<std::sync::Arc<Type>> {
        self.di.ty(id)
    }

    fn is_struct_union_enum(&self, id: TypeId) -> Result<bool> {
        Ok(matches!(
            &*self.ty(id)?,
            Type::Struct(_) | Type::Union(_) | Type::Enum(_)
        ))
    }

    fn is_anonymous(&self, id: TypeId) -> Result<bool> {
        Ok(self.ty(id)?.name().is_none())
    }

    /// `tag__fprintf` for the top-level type.
    fn tag_fprintf(&mut self, id: TypeId, opts: &PaholeOptions, out: &mut String) -> Result<()> {
        let t = self.ty(id)?;
        let is_union = matches!(&*t, Type::Union(_));
        let conf = Conf {
            indent: 0,
            type_spacing: 26,
            name_spacing: if opts.expand_types {
                55
            } else if is_union {
                21
            } else {
                23
            },
            base_offset: 0,
            rel_offset: false,
            cachelinep: None,
            prefix: None,
            suffix: None,
            emit_stats: true,
            suppress_offset_comment: false,
            union_member: false,
            first_member: false,
            last_member: false,
            hex: opts.hex,
            expand_types: opts.expand_types,
            cacheline_size: opts.cacheline_size.max(1),
        };
        // pahole calls class__find_holes() before printing.
        if t.is_struct() {
            self.model.find_holes(id)?;
        }
        match &*t {
            Type::Struct(_) => self.class_fprintf(id, &conf, out),
            Type::Union(_) => self.union_fprintf(id, &conf, out),
            Type::Enum(_) => self.enumeration_fprintf(id, &conf, out),
            Type::Typedef { name, target } => {
                self.typedef_fprintf(name.as_deref().unwrap_or(""), *target, &conf, out)
            }
            _ => {
                out.push_str("/* tag__fprintf: tag not supported! */");
                Ok(())
            }
        }
    }

    /// `typedef__fprintf`.
    fn typedef_fprintf(
        &mut self,
        name: &str,
        target: Option<TypeId>,
        conf: &Conf,
        out: &mut String,
    ) -> Result<()> {
        let Some(tid) = target else {
            out.push_str(&format!("typedef void {name}"));
            return Ok(());
        };
        let t = self.ty(tid)?;
        match &*t {
            Type::Array { .. } => {
                out.push_str("typedef ");
                return self.array_fprintf(tid, Some(name), conf, out);
            }
            Type::Pointer { target: Some(p) } => {
                if matches!(&*self.ty(*p)?, Type::Subroutine { .. }) {
                    out.push_str("typedef ");
                    out.push_str(&self.di.ftype_string(*p, Some(name), false, true, 0, true));
                    return Ok(());
                }
            }
            Type::Subroutine { .. } => {
                out.push_str("typedef ");
                out.push_str(&self.di.ftype_string(tid, Some(name), false, false, 0, true));
                return Ok(());
            }
            Type::Struct(a) => {
                if let Some(n) = &a.name {
                    out.push_str(&format!("typedef struct {n} {name}"));
                    return Ok(());
                }
                let mut tconf = conf.clone();
                tconf.suffix = Some(name.to_string());
                out.push_str("typedef ");
                return self.class_fprintf(tid, &tconf, out);
            }
            Type::Enum(e) => {
                if let Some(n) = &e.name {
                    out.push_str(&format!("typedef enum {n} {name}"));
                    return Ok(());
                }
                let mut tconf = conf.clone();
                tconf.suffix = Some(name.to_string());
                out.push_str("typedef ");
                return self.enumeration_fprintf(tid, &tconf, out);
            }
            _ => {}
        }
        out.push_str(&format!(
            "typedef {} {name}",
            self.di.tag_name(Some(tid), 512)
        ));
        Ok(())
    }

    /// `enumeration__fprintf`.
    fn enumeration_fprintf(&mut self, id: TypeId, conf: &Conf, out: &mut String) -> Result<()> {
        let t = self.ty(id)?;
        let Type::Enum(e) = &*t else {
            return Ok(());
        };
        let max_len = e
            .enumerators
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0);
        out.push_str("enum");
        if let Some(n) = &e.name {
            out.push(' ');
            out.push_str(n);
        }
        let indent = conf.indent.min(MAX_INDENT - 1);
        if e.enumerators.is_empty() {
            return Ok(());
        }
        out.push_str(" {\n");
        for (name, value) in &e.enumerators {
            out.push_str(tabs(indent));
            out.push('\t');
            out.push_str(&format!("{name:<max_len$} = "));
            if conf.hex {
                out.push_str(&if *value == 0 {
                    "0".to_string()
                } else {
                    format!("{value:#x}")
                });
            } else if e.signed {
                out.push_str(&(*value as i64).to_string());
            } else {
                out.push_str(&value.to_string());
            }
            out.push_str(",\n");
        }
        out.push_str(tabs(indent));
        out.push('}');
        if e.byte_size != 4 {
            out.push_str(" __attribute__((__packed__))");
        }
        if let Some(s) = &conf.suffix {
            out.push(' ');
            out.push_str(s);
        }
        Ok(())
    }

    /// `array_type__fprintf`.
    fn array_fprintf(
        &mut self,
        id: TypeId,
        name: Option<&str>,
        conf: &Conf,
        out: &mut String,
    ) -> Result<()> {
        let t = self.ty(id)?;
        let Type::Array {
            elem,
            dims,
            is_vector,
        } = &*t
        else {
            return Ok(());
        };
        let Some(mut elem_id) = *elem else {
            out.push_str("<ERROR: type not found!>");
            return Ok(());
        };
        if dims.first() == Some(&0) {
            if let Type::Qualified {
                qualifier: Qualifier::Const,
                target: Some(inner),
            } = &*self.ty(elem_id)?
            {
                elem_id = *inner;
            }
        }
        self.type_fprintf(Some(elem_id), name, conf, out)?;
        let mut flat: u64 = 0;
        for (i, &n) in dims.iter().enumerate() {
            if *is_vector {
                if n == 0 && i == 0 {
                    break;
                }
                flat = if flat == 0 {
                    u64::from(n)
                } else {
                    flat * u64::from(n)
                };
            } else {
                let single_member = conf.last_member && conf.first_member;
                if n != 0 || !conf.last_member || single_member || conf.union_member {
                    out.push_str(&format!("[{n}]"));
                } else {
                    out.push_str("[]");
                }
            }
        }
        if *is_vector {
            // tag__follow_typedef(array): the element type through typedefs.
            let mut e = *elem;
            while let Some(i) = e {
                match &*self.ty(i)? {
                    Type::Typedef { target, .. } => e = *target,
                    _ => break,
                }
            }
            let flat = if flat == 0 { 1 } else { flat };
            let esize = self.di.size_of(e)?;
            out.push_str(&format!(
                " __attribute__ ((__vector_size__ ({})))",
                flat * esize
            ));
        }
        Ok(())
    }

    /// `type__fprintf`: a type followed by a name, padded to the type column.
    fn type_fprintf(
        &mut self,
        id: Option<TypeId>,
        name: Option<&str>,
        conf: &Conf,
        out: &mut String,
    ) -> Result<()> {
        let _guard = DepthGuard::enter()?;
        let Some(mut id) = id else {
            out.push_str(&format!(
                "{} {}",
                left("<ERROR", conf.type_spacing),
                name.unwrap_or("(null)")
            ));
            return Ok(());
        };
        let mut expand_types = conf.expand_types;
        if expand_types {
            let mut expanded = false;
            loop {
                let t = self.ty(id)?;
                let Type::Typedef { name: tn, target } = &*t else {
                    break;
                };
                let tn = tn.as_deref().unwrap_or("");
                if expanded {
                    out.push_str(&format!(" -> {tn}"));
                } else {
                    out.push_str(&format!("/* typedef {tn}"));
                    expanded = true;
                }
                match target {
                    Some(next) => id = *next,
                    None => {
                        out.push_str(&format!(
                            "{} {}",
                            left("<ERROR", conf.type_spacing),
                            name.unwrap_or("(null)")
                        ));
                        return Ok(());
                    }
                }
            }
            if expanded {
                out.push_str(" */ ");
            }
        }
        let mut tconf = conf.clone();
        let mut name: Option<String> = name.map(str::to_string);
        if self.is_struct_union_enum(id)? {
            tconf.prefix = None;
            tconf.suffix = name.clone();
            tconf.emit_stats = false;
        }
        loop {
            let t = self.ty(id)?;
            match &*t {
                Type::Pointer { target: Some(p) } => {
                    let pt = self.ty(*p)?;
                    if matches!(&*pt, Type::Subroutine { .. }) {
                        out.push_str(&self.di.ftype_string(
                            *p,
                            name.as_deref(),
                            false,
                            true,
                            tconf.type_spacing,
                            true,
                        ));
                        return Ok(());
                    }
                    let anon = matches!(&*pt, Type::Struct(_) | Type::Union(_) | Type::Enum(_))
                        && pt.name().is_none();
                    if anon {
                        let n = format!("* {}", name.as_deref().unwrap_or("(null)"));
                        tconf.rel_offset = true;
                        tconf.type_spacing -= 8;
                        tconf.prefix = None;
                        tconf.suffix = Some(n.clone());
                        tconf.emit_stats = false;
                        name = Some(n);
                        id = *p;
                        // Inner structs reached through a pointer are printed
                        // with relative offsets and no expansion of named types.
                        expand_types = false;
                        continue;
                    }
                    return self.print_default(id, name.as_deref(), &tconf, out);
                }
                Type::Subroutine { .. } => {
                    out.push_str(&self.di.ftype_string(
                        id,
                        name.as_deref(),
                        false,
                        false,
                        tconf.type_spacing,
                        true,
                    ));
                    return Ok(());
                }
                Type::Qualified {
                    qualifier: Qualifier::Const,
                    target,
                } => {
                    out.push_str("const ");
                    tconf.type_spacing -= 6;
                    match target {
                        Some(next) => {
                            id = *next;
                            continue;
                        }
                        None => return self.print_default(id, name.as_deref(), &tconf, out),
                    }
                }
                Type::Array { .. } => return self.array_fprintf(id, name.as_deref(), &tconf, out),
                Type::Struct(a) => {
                    if let (Some(n), false) = (&a.name, expand_types) {
                        out.push_str(&format!(
                            "struct {} {}",
                            left(n, tconf.type_spacing - 7),
                            name.as_deref().unwrap_or("")
                        ));
                        return Ok(());
                    }
                    self.model.find_holes(id)?;
                    tconf.type_spacing -= 8;
                    return self.class_fprintf(id, &tconf, out);
                }
                Type::Union(a) => {
                    if let (Some(n), false) = (&a.name, expand_types) {
                        out.push_str(&format!(
                            "union {} {}",
                            left(n, tconf.type_spacing - 6),
                            name.as_deref().unwrap_or("")
                        ));
                        return Ok(());
                    }
                    tconf.type_spacing -= 8;
                    return self.union_fprintf(id, &tconf, out);
                }
                Type::Enum(e) => {
                    if let Some(n) = &e.name {
                        out.push_str(&format!(
                            "enum {} {}",
                            left(n, tconf.type_spacing - 5),
                            name.as_deref().unwrap_or("")
                        ));
                        return Ok(());
                    }
                    return self.enumeration_fprintf(id, &tconf, out);
                }
                _ => return self.print_default(id, name.as_deref(), &tconf, out),
            }
        }
    }

    fn print_default(
        &mut self,
        id: TypeId,
        name: Option<&str>,
        conf: &Conf,
        out: &mut String,
    ) -> Result<()> {
        let tn = self.di.tag_name(Some(id), 128);
        out.push_str(&format!(
            "{} {}",
            left(&tn, conf.type_spacing),
            name.unwrap_or("(null)")
        ));
        Ok(())
    }

    /// `class__fprintf_cacheline_boundary`.
    fn cacheline_boundary(&self, conf: &Conf, offset: u32, out: &mut String) {
        let Some(cell) = &conf.cachelinep else {
            return;
        };
        let size = conf.cacheline_size;
        let cacheline = offset / size;
        if cacheline > cell.get() {
            let pos = offset % size;
            let in_bytes = offset - pos;
            if pos == 0 {
                out.push_str(&format!(
                    "/* --- cacheline {cacheline} boundary ({in_bytes} bytes) --- */\n"
                ));
            } else {
                out.push_str(&format!(
                    "/* --- cacheline {cacheline} boundary ({in_bytes} bytes) was {pos} byte{} ago --- */\n",
                    plural(u64::from(pos))
                ));
            }
            out.push_str(tabs(conf.indent));
            cell.set(cacheline);
        }
    }

    /// `class_member__fprintf`: one member line (or an inline struct/union).
    fn member_fprintf(
        &mut self,
        member: &PMember,
        union_member: bool,
        ty: TypeId,
        conf: &Conf,
        out: &mut String,
    ) -> Result<()> {
        let size = member.byte_size;
        let mut sconf = conf.clone();
        let mut offset = member.byte_offset;
        if !sconf.rel_offset {
            offset = offset.wrapping_add(sconf.base_offset);
            if !union_member {
                sconf.base_offset = offset;
            }
        }
        self.cacheline_boundary(conf, offset, out);
        let start = out.len();
        if member.is_static {
            out.push_str("static ");
        }
        let sue = self.is_struct_union_enum(ty)?;
        let anonymous_sue = sue && self.is_anonymous(ty)?;
        if sue {
            self.type_fprintf(Some(ty), None, &sconf, out)?;
            if let Some(n) = &member.name {
                if anonymous_sue {
                    out.push(' ');
                }
                out.push_str(n);
            }
        } else {
            self.type_fprintf(Some(ty), member.name.as_deref(), &sconf, out)?;
        }
        if !member.is_static && member.bitfield_size != 0 {
            out.push_str(&format!(":{}", member.bitfield_size));
        }
        let mut alignment_printed = 0i32;
        if member.alignment != 0 {
            let a = format!(" __attribute__((__aligned__({})))", member.alignment);
            alignment_printed = a.len() as i32;
            out.push_str(&a);
        }
        out.push(';');
        let bitfield_offset = u64::from(member.bitfield_offset as u8);
        let hex = sconf.hex;
        if anonymous_sue {
            if sconf.suppress_offset_comment {
                return Ok(());
            }
            let mut slen = alignment_printed + member.name.as_ref().map_or(-1, |n| n.len() as i32);
            let mut size_spacing = 5;
            if self.model.is_struct(Some(ty)) && self.model.class(ty)?.is_packed {
                slen += "__attribute__((__packed__))".len() as i32 + 1;
            }
            let w = sconf.type_spacing + sconf.name_spacing - slen - 3;
            out.push_str(&right(" ", w));
            out.push_str("/* ");
            out.push_str(&num(u64::from(offset), 5, hex));
            if member.bitfield_size != 0 {
                out.push(':');
                out.push_str(&num(bitfield_offset, 2, hex));
                size_spacing -= 3;
            }
            out.push(' ');
            out.push_str(&num(size, size_spacing, hex));
            out.push_str(" */");
        } else {
            let printed = (out.len() - start) as i32;
            let spacing = sconf.type_spacing + sconf.name_spacing - printed;
            if sconf.suppress_offset_comment {
                return Ok(());
            }
            let mut size_spacing = 5;
            out.push_str(&right(" ", spacing.max(0)));
            out.push_str("/* ");
            out.push_str(&num(u64::from(offset), 5, hex));
            if member.bitfield_size != 0 {
                out.push(':');
                out.push_str(&num(bitfield_offset, 2, hex));
                size_spacing -= 3;
            }
            out.push(' ');
            out.push_str(&num(size, size_spacing, hex));
            out.push_str(" */");
        }
        Ok(())
    }

    /// `union__fprintf`.
    fn union_fprintf(&mut self, id: TypeId, conf: &Conf, out: &mut String) -> Result<()> {
        let _guard = DepthGuard::enter()?;
        let indent = conf.indent.min(MAX_INDENT - 1);
        if let Some(p) = &conf.prefix {
            out.push_str(p);
            out.push(' ');
        }
        let class = self.model.class(id)?.clone();
        out.push_str("union");
        if let Some(n) = &class.name {
            out.push(' ');
            out.push_str(n);
        }
        out.push_str(" {\n");
        let mut uconf = conf.clone();
        uconf.indent = indent + 1;
        self.model.union_infer_packed(id)?;
        let cell = uconf
            .cachelinep
            .get_or_insert_with(|| Rc::new(Cell::new(0)))
            .clone();
        let initial = cell.get();
        for m in class.members.iter() {
            let Some(ty) = m.ty else {
                out.push_str(tabs(uconf.indent));
                out.push_str("<ERROR: type not found!>");
                continue;
            };
            uconf.union_member = true;
            out.push_str(tabs(uconf.indent));
            self.member_fprintf(m, true, ty, &uconf, out)?;
            out.push('\n');
            cell.set(initial);
        }
        out.push_str(tabs(indent));
        out.push('}');
        if let Some(s) = &conf.suffix {
            out.push(' ');
            out.push_str(s);
        }
        Ok(())
    }

    /// `__class__fprintf`: a struct, its members and (at the top) the summary.
    fn class_fprintf(&mut self, id: TypeId, conf: &Conf, out: &mut String) -> Result<()> {
        let _guard = DepthGuard::enter()?;
        let mut cconf = conf.clone();
        if let Some(p) = &cconf.prefix {
            out.push_str(p);
            out.push(' ');
        }
        let name = self.model.class(id)?.name.clone();
        out.push_str("struct");
        if let Some(n) = &name {
            out.push(' ');
            out.push_str(n);
        }
        let indent = cconf.indent.min(MAX_INDENT - 1);
        if cconf.cachelinep.is_none() {
            cconf.cachelinep = Some(Rc::new(Cell::new(0)));
        }
        cconf.indent = indent + 1;
        self.model.infer_packed(id)?;
        out.push_str(" {\n");
        let class = self.model.class(id)?.clone();
        let ind = tabs(cconf.indent);
        let mut newline = false;
        let mut sum_bit_holes: u32 = 0;
        let mut sum_holes: u32 = 0;
        let mut sum_bytes: u32 = 0;
        let mut sum_bits: u32 = 0;
        let mut nr_paddings: u16 = 0;
        let mut sum_paddings: u32 = 0;
        let mut nr_forced_alignments: u16 = 0;
        let mut nr_forced_alignment_holes: u16 = 0;
        let mut sum_forced_alignment_holes: u32 = 0;
        if class.pre_bit_hole > 0 {
            if !newline {
                out.push('\n');
                newline = true;
            }
            out.push_str(&format!(
                "{ind}/* XXX {} bit{} hole, try to pack */\n",
                class.pre_bit_hole,
                plural(class.pre_bit_hole.into())
            ));
            sum_bit_holes += u32::from(class.pre_bit_hole);
        }
        if class.pre_hole > 0 {
            if !newline {
                out.push('\n');
                newline = true;
            }
            out.push_str(&format!(
                "{ind}/* XXX {} byte{} hole, try to pack */\n",
                class.pre_hole,
                plural(class.pre_hole.into())
            ));
            sum_holes += u32::from(class.pre_hole);
        }
        let mut last: Option<&PMember> = None;
        let mut last_size: u64 = 0;
        let n = class.members.len();
        for (i, pos) in class.members.iter().enumerate() {
            if pos.alignment != 0 {
                let hole = last.map_or(class.pre_hole, |l| l.hole);
                if hole != 0 {
                    nr_forced_alignment_holes = nr_forced_alignment_holes.wrapping_add(1);
                    sum_forced_alignment_holes += u32::from(hole);
                }
                nr_forced_alignments = nr_forced_alignments.wrapping_add(1);
            }
            if let (Some(l), false, true) = (last, pos.inheritance, last_size != 0) {
                if l.bit_hole != 0 && pos.bitfield_size != 0 {
                    let mut bitfield_size = u32::from(l.bit_hole);
                    if l.byte_offset != pos.byte_offset {
                        out.push_str(&format!(
                            "\n{ind}/* Force alignment to the next boundary: */\n"
                        ));
                        bitfield_size = 0;
                    }
                    out.push_str(ind);
                    self.type_fprintf(pos.ty, Some(""), &cconf, out)?;
                    out.push_str(&format!(":{bitfield_size};\n"));
                }
                if pos.byte_offset < l.byte_offset
                    || (pos.byte_offset == l.byte_offset
                        && l.bitfield_size == 0
                        && pos.bitfield_size != 0)
                {
                    if !newline {
                        out.push('\n');
                        newline = true;
                    }
                    out.push_str(&format!(
                        "{ind}/* Bitfield combined with previous fields */\n"
                    ));
                } else {
                    let cc_last_size = i64::from(pos.byte_offset) - i64::from(l.byte_offset);
                    if cc_last_size > 0 && (cc_last_size as u64) < last_size {
                        if !newline {
                            out.push('\n');
                            newline = true;
                        }
                        out.push_str(&format!("{ind}/* Bitfield combined with next fields */\n"));
                    }
                }
            }
            if newline {
                out.push('\n');
                newline = false;
            }
            let Some(pos_ty) = pos.ty else {
                out.push_str(ind);
                out.push_str("<ERROR: type not found!>");
                continue;
            };
            cconf.last_member = i + 1 == n;
            cconf.first_member = last.is_none();
            let size = pos.byte_size;
            out.push_str(ind);
            self.member_fprintf(pos, false, pos_ty, &cconf, out)?;
            if self.model.is_struct(Some(pos_ty)) {
                self.model.find_holes(pos_ty)?;
                self.model.infer_packed(pos_ty)?;
                let padding = self.model.class(pos_ty)?.padding;
                if padding > 0 {
                    nr_paddings = nr_paddings.wrapping_add(1);
                    sum_paddings += u32::from(padding);
                    if !newline {
                        out.push('\n');
                        newline = true;
                    }
                    out.push_str(&format!(
                        "\n{ind}/* XXX last struct has {padding} byte{} of padding */",
                        plural(padding.into())
                    ));
                }
            }
            if pos.bit_hole != 0 {
                if !newline {
                    out.push('\n');
                    newline = true;
                }
                out.push_str(&format!(
                    "\n{ind}/* XXX {} bit{} hole, try to pack */",
                    pos.bit_hole,
                    plural(pos.bit_hole.into())
                ));
                sum_bit_holes += u32::from(pos.bit_hole);
            }
            if pos.hole > 0 {
                if !newline {
                    out.push('\n');
                    newline = true;
                }
                out.push_str(&format!(
                    "\n{ind}/* XXX {} byte{} hole, try to pack */",
                    pos.hole,
                    plural(pos.hole.into())
                ));
                sum_holes += u32::from(pos.hole);
            }
            out.push('\n');
            if pos.inheritance {
                continue;
            }
            if pos.bitfield_size != 0 {
                sum_bits += u32::from(pos.bitfield_size);
            } else {
                sum_bytes = sum_bytes.wrapping_add(pos.byte_size as u32);
            }
            match last {
                None => last_size = size,
                Some(l) if last_size == 0 || l.byte_offset != pos.byte_offset => last_size = size,
                Some(l) if l.bitfield_size == 0 && pos.bitfield_size != 0 => last_size = size,
                _ => {}
            }
            last = Some(pos);
        }
        // DWARF carries alignment info, so pahole shows the padding a
        // `__aligned__` attribute it cannot see must have caused. BTF has
        // none (pahole's `has_alignment_info` is false for it).
        let has_alignment_info = self.di.type_source() == crate::debuginfo::TypeSource::Dwarf;
        if let (Some(l), true, 0, true) = (
            last,
            class.padding != 0,
            class.alignment,
            has_alignment_info,
        ) {
            let size = self.di.size_of(l.ty)?;
            if size.is_power_of_two() && u64::from(class.padding) > 8 {
                out.push_str(&format!("\n{ind}/* Force padding: */\n"));
                let mut added = 0u64;
                while added < u64::from(class.padding) {
                    out.push_str(ind);
                    self.type_fprintf(l.ty, Some(""), &cconf, out)?;
                    out.push_str(&format!(":{};\n", size * 8));
                    added += size;
                }
            }
        }
        if cconf.emit_stats {
            let cls = conf.cacheline_size;
            let type_size = self.di.size_of(Some(id))?;
            out.push_str(&format!(
                "\n{ind}/* size: {}, cachelines: {}, members: {} */\n",
                class.size as i32,
                type_size.div_ceil(u64::from(cls)),
                class.nr_members
            ));
            if sum_holes > 0 || sum_bit_holes > 0 {
                if sum_bytes > 0 {
                    out.push_str(&format!("{ind}/* sum members: {sum_bytes}"));
                    if sum_holes > 0 {
                        out.push_str(&format!(
                            ", holes: {}, sum holes: {sum_holes}",
                            class.nr_holes
                        ));
                    }
                    out.push_str(" */\n");
                }
                if sum_bits > 0 {
                    out.push_str(&format!("{ind}/* sum bitfield members: {sum_bits} bits"));
                    if sum_bit_holes > 0 {
                        out.push_str(&format!(
                            ", bit holes: {}, sum bit holes: {sum_bit_holes} bits",
                            class.nr_bit_holes
                        ));
                    } else {
                        out.push_str(&format!(" ({} bytes)", sum_bits / 8));
                    }
                    out.push_str(" */\n");
                }
            }
            if class.padding > 0 {
                out.push_str(&format!("{ind}/* padding: {} */\n", class.padding));
            }
            if nr_paddings > 0 {
                out.push_str(&format!(
                    "{ind}/* paddings: {nr_paddings}, sum paddings: {sum_paddings} */\n"
                ));
            }
            if class.bit_padding > 0 {
                out.push_str(&format!(
                    "{ind}/* bit_padding: {} bits */\n",
                    class.bit_padding
                ));
            }
            if nr_forced_alignments != 0 {
                out.push_str(&format!(
                    "{ind}/* forced alignments: {nr_forced_alignments}"
                ));
                if nr_forced_alignment_holes != 0 {
                    out.push_str(&format!(
                        ", forced holes: {nr_forced_alignment_holes}, sum forced holes: {sum_forced_alignment_holes}"
                    ));
                }
                out.push_str(" */\n");
            }
            let last_cacheline = cconf.base_offset.wrapping_add(class.size) % cls;
            if last_cacheline != 0 {
                out.push_str(&format!(
                    "{ind}/* last cacheline: {last_cacheline} bytes */\n"
                ));
            }
            let size_diff = class.size.wrapping_mul(8).wrapping_sub(
                sum_bytes
                    .wrapping_mul(8)
                    .wrapping_add(sum_bits)
                    .wrapping_add(sum_holes.wrapping_mul(8))
                    .wrapping_add(sum_bit_holes)
                    .wrapping_add(u32::from(class.padding).wrapping_mul(8))
                    .wrapping_add(u32::from(class.bit_padding)),
            ) as i32;
            if size_diff != 0 && class.nr_members != 0 {
                out.push_str(&format!(
                    "\n{ind}/* BRAIN FART ALERT! {} bytes != {sum_bytes} (member bytes) + {sum_bits} (member bits) + {sum_holes} (byte holes) + {sum_bit_holes} (bit holes), diff = {size_diff} bits */\n",
                    class.size as i32
                ));
            }
        }
        out.push_str(tabs(indent));
        out.push('}');
        let is_packed = self.model.class(id)?.is_packed;
        if is_packed {
            out.push_str(" __attribute__((__packed__))");
        }
        if let Some(s) = &cconf.suffix {
            out.push(' ');
            out.push_str(s);
        }
        if class.alignment != 0 && !is_packed {
            out.push_str(&format!(
                " __attribute__((__aligned__({})))",
                class.alignment
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_widths() {
        assert_eq!(left("ab", 4), "ab  ");
        assert_eq!(left("ab", -4), "ab  ");
        assert_eq!(right("ab", 4), "  ab");
        assert_eq!(right(" ", -3), "   ");
        assert_eq!(right(" ", 0), " ");
        assert_eq!(num(0, 5, true), "    0");
        assert_eq!(num(8, 5, true), "  0x8");
        assert_eq!(num(12, 5, false), "   12");
        assert_eq!(num(1234567, 5, false), "1234567");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1), "");
        assert_eq!(plural(2), "s");
        assert_eq!(plural(0), "s");
    }
}
