//! Which ORC format a kernel uses, read from the kernel itself rather than
//! guessed from its version number:
//!
//! 1. `.orc_header` (Linux b9f174c811e3, "x86/unwind/orc: Add ELF section
//!    with ORC version identifier", v6.4 and 6.3.10): a hash of the ORC
//!    definitions; a known hash names the layout and the register numbering.
//!    Read from the vmlinux's section, or without a vmlinux from memory
//!    (`__start_orc_header` .. `__stop_orc_header`).
//! 2. The type `struct orc_entry` (DWARF or BTF): which bit fields it has
//!    (`end` up to 6.3, `signal` since 6.3) names the layout.
//! 3. The table itself: which raw `sp_reg` and `bp_reg` values dominate
//!    names the register numbering ([`RegNumbering::from_entries`]).
//! 4. The release string, only for the layout, only when 1 and 2 both fail,
//!    with a warning.
//!
//! Anything that does not add up is an error that names the kernel release
//! and what is missing: a wrong unwind is worse than none.

use crate::arch::orc::{OrcFormat, OrcVersion, RegNumbering};
use crate::error::{Error, Result};
use crate::kernel::program::Program;

/// The format found, and what the user should be told about how.
#[derive(Debug, Clone)]
pub struct Detected {
    /// The format to decode entries with.
    pub format: OrcFormat,
    /// Set when the format rests on something weaker than a known
    /// `.orc_header` or the debug info's type.
    pub warning: Option<String>,
}

/// The vmlinux's `.orc_header`, from the file or from memory.
fn header(prog: &Program) -> Option<Vec<u8>> {
    if let Some((_, bytes)) = prog.debug.section(".orc_header") {
        return Some(bytes.to_vec());
    }
    let start = prog.symbol("__start_orc_header").ok()?;
    let stop = prog.symbol("__stop_orc_header").ok()?;
    let len = stop.0.checked_sub(start.0)?;
    if len == 0 || len > 4096 {
        return None;
    }
    prog.read_vec(start, len as usize).ok()
}

/// The layout `struct orc_entry`'s fields show, if the debug info has it.
fn layout_from_type(prog: &Program) -> Option<OrcVersion> {
    let d = &prog.debug;
    let has = |m: &str| d.has_member("orc_entry", m);
    if !has("sp_reg") {
        return None;
    }
    match (has("end"), has("signal")) {
        // 4.14 (39358a033b2e) to 6.2: `type:2 end:1`.
        (true, false) => Some(OrcVersion::V1),
        // ffb1b4a41016 (v6.3): `type:2 signal:1 end:1`.
        (true, true) => Some(OrcVersion::V2),
        // fb799447ae29 (v6.4): `type:3 signal:1`, `end` gone.
        (false, true) => Some(OrcVersion::V3),
        (false, false) => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ORC format of `prog`'s kernel; `orcs` is the vmlinux's raw
/// `.orc_unwind` (6 bytes an entry).
pub fn detect(prog: &Program, orcs: &[u8]) -> Result<Detected> {
    let release = prog
        .banner
        .split_whitespace()
        .nth(2)
        .unwrap_or("(unknown release)")
        .to_owned();
    decide(
        header(prog).as_deref(),
        layout_from_type(prog),
        RegNumbering::from_entries(orcs),
        &release,
    )
    .map_err(|what| Error::BadFile {
        path: prog.debug.path().to_path_buf(),
        what: format!("kernel {release}: {what}; kernel backtraces are not possible"),
    })
}

/// The decision, from what the kernel showed: its `.orc_header`, the
/// layout its `struct orc_entry` has, the numbering its table shows.
fn decide(
    header: Option<&[u8]>,
    from_type: Option<OrcVersion>,
    from_table: Option<RegNumbering>,
    release: &str,
) -> std::result::Result<Detected, String> {
    match header {
        Some(h) => {
            if let Some((format, since)) = OrcFormat::from_header(h) {
                if from_table.is_some_and(|r| r != format.regs) {
                    return Err(format!(
                        ".orc_header {} names the ORC format of {since}, but the ORC table's \
                         registers are numbered otherwise ({from_table:?})",
                        hex(h)
                    ));
                }
                return Ok(Detected {
                    format,
                    warning: None,
                });
            }
            // An ORC definition kpeek has not seen: only what the kernel
            // shows about itself will do.
            let layout = from_type.ok_or_else(|| {
                format!(
                    "unknown ORC format: .orc_header {} is not one kpeek knows, and the debug \
                     info has no `struct orc_entry` to read the layout from",
                    hex(h)
                )
            })?;
            let regs = from_table.ok_or_else(|| {
                format!(
                    "unknown ORC format: .orc_header {} is not one kpeek knows, and the ORC \
                     table's register numbers fit no numbering kpeek knows",
                    hex(h)
                )
            })?;
            Ok(Detected {
                format: OrcFormat { layout, regs },
                warning: Some(format!(
                    "kernel {release}: .orc_header {} is not one kpeek knows; the ORC layout \
                     ({layout:?}) is read from `struct orc_entry` and the register numbering \
                     ({regs:?}) from the table",
                    hex(h)
                )),
            })
        }
        None => {
            // No header: older than b9f174c811e3 (v6.4, 6.3.10), hence
            // older than any renumbering of the registers.
            if from_table == Some(RegNumbering::Renumbered) {
                return Err(
                    "the vmlinux has no .orc_header (so it predates Linux 6.4), yet its \
                     ORC table is numbered like Linux 7.2's"
                        .to_owned(),
                );
            }
            let regs = RegNumbering::Classic;
            match from_type {
                Some(layout) => Ok(Detected {
                    format: OrcFormat { layout, regs },
                    warning: None,
                }),
                None => {
                    let layout = OrcVersion::for_release(release);
                    Ok(Detected {
                        format: OrcFormat { layout, regs },
                        warning: Some(format!(
                            "kernel {release}: no .orc_header and no `struct orc_entry` in the \
                             debug info; the ORC layout ({layout:?}) is guessed from the release"
                        )),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H64: [u8; 20] = [
        0xfe, 0x5d, 0x32, 0xbf, 0x58, 0x1b, 0xd6, 0x3b, 0x2c, 0xa9, 0xa5, 0xc6, 0x5b, 0xa5, 0xa6,
        0x25, 0xea, 0xb3, 0xfe, 0x24,
    ];

    #[test]
    fn a_known_header_decides() {
        let d = decide(Some(&H64), None, None, "6.12.1").unwrap();
        assert_eq!(d.format.layout, OrcVersion::V3);
        assert!(d.warning.is_none());
        // ... unless the table contradicts it.
        let e = decide(Some(&H64), None, Some(RegNumbering::Renumbered), "6.12.1").unwrap_err();
        assert!(e.contains("numbered otherwise"), "{e}");
    }

    #[test]
    fn an_unknown_header_needs_the_type_and_the_table() {
        let h = [7u8; 20];
        let e = decide(Some(&h), None, Some(RegNumbering::Classic), "7.9.0").unwrap_err();
        assert!(
            e.contains("unknown ORC format") && e.contains("struct orc_entry"),
            "{e}"
        );
        let e = decide(Some(&h), Some(OrcVersion::V3), None, "7.9.0").unwrap_err();
        assert!(e.contains("fit no numbering"), "{e}");
        let d = decide(
            Some(&h),
            Some(OrcVersion::V3),
            Some(RegNumbering::Renumbered),
            "7.9.0",
        )
        .unwrap();
        assert_eq!(d.format.regs, RegNumbering::Renumbered);
        assert!(d.warning.unwrap().contains("7.9.0"));
    }

    #[test]
    fn no_header_means_the_classic_numbering() {
        let d = decide(
            None,
            Some(OrcVersion::V1),
            Some(RegNumbering::Classic),
            "5.10.0",
        )
        .unwrap();
        assert_eq!(
            (d.format.layout, d.format.regs),
            (OrcVersion::V1, RegNumbering::Classic)
        );
        assert!(d.warning.is_none());
        assert!(decide(
            None,
            Some(OrcVersion::V1),
            Some(RegNumbering::Renumbered),
            "5.10.0"
        )
        .is_err());
        // Only with neither header nor type does the release decide, with a warning.
        let d = decide(None, None, None, "6.3.1").unwrap();
        assert_eq!(d.format.layout, OrcVersion::V2);
        assert!(d.warning.unwrap().contains("guessed from the release"));
    }
}
