//! ORC unwind tables: the kernel's own description of every code address's
//! stack frame (`CONFIG_UNWINDER_ORC`, the x86_64 default since 4.14).
//!
//! Two parallel arrays: `.orc_unwind_ip` holds place-relative `s32`s
//! (`ip[i] = &orc_unwind_ip[i] + orc_unwind_ip[i]`), `.orc_unwind` holds a
//! 6-byte `struct orc_entry` per ip, valid from that ip up to the next one.
//! The vmlinux's tables are read from the file (sorted at build time since
//! 5.6; sorted here if not); a module's from the dump, where the kernel
//! sorted them when it loaded the module.
//!
//! The bit layout of `struct orc_entry` changed twice:
//!
//! | kernels | layout of the 16-bit word after the two offsets |
//! |---|---|
//! | 4.14 – 6.2 | `sp_reg:4 bp_reg:4 type:2 end:1`; types CALL=0 REGS=1 REGS_PARTIAL=2 |
//! | 6.3 | `sp_reg:4 bp_reg:4 type:2 signal:1 end:1` |
//! | 6.4 – | `sp_reg:4 bp_reg:4 type:3 signal:1`; types UNDEFINED=0 END_OF_STACK=1 CALL=2 REGS=3 REGS_PARTIAL=4 |
//!
//! The register numbers (`ORC_REG_*`) are the same in all three.

use crate::error::{Error, Result};

/// Which `struct orc_entry` layout a kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrcVersion {
    /// 4.14 – 6.2.
    V1,
    /// 6.3 (`signal` bit added).
    V2,
    /// 6.4 and later (three-bit `type` with UNDEFINED and END_OF_STACK).
    V3,
}

impl OrcVersion {
    /// The layout for a kernel release (`uname -r`), e.g. `"6.1.0-27-amd64"`.
    /// Anything unparsable is taken as new.
    pub fn for_release(release: &str) -> OrcVersion {
        let mut it = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u32>().ok());
        let version = (it.next().unwrap_or(99), it.next().unwrap_or(0));
        if version < (6, 3) {
            OrcVersion::V1
        } else if version < (6, 4) {
            OrcVersion::V2
        } else {
            OrcVersion::V3
        }
    }
}

/// What kind of frame an entry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrcType {
    /// No information: the unwinder stops with an error.
    Undefined,
    /// The bottom of a stack (e.g. `ret_from_fork`'s hint).
    EndOfStack,
    /// A normal call frame: the return address is just below the CFA.
    Call,
    /// The CFA is a full `struct pt_regs`.
    Regs,
    /// The CFA is an IRET frame (the tail of a `pt_regs`).
    RegsPartial,
}

/// `ORC_REG_*`: the base register of the CFA or of the saved rbp.
pub mod reg {
    /// Unchanged / no such register.
    pub const UNDEFINED: u8 = 0;
    /// The CFA (previous stack pointer).
    pub const PREV_SP: u8 = 1;
    /// rdx, from a `pt_regs`.
    pub const DX: u8 = 2;
    /// rdi, from a `pt_regs`.
    pub const DI: u8 = 3;
    /// rbp.
    pub const BP: u8 = 4;
    /// rsp.
    pub const SP: u8 = 5;
    /// r10, from a `pt_regs`.
    pub const R10: u8 = 6;
    /// r13, from a `pt_regs`.
    pub const R13: u8 = 7;
    /// `[rbp + offset]`.
    pub const BP_INDIRECT: u8 = 8;
    /// `[rsp] + offset`.
    pub const SP_INDIRECT: u8 = 9;
}

/// One decoded `struct orc_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrcEntry {
    /// Added to the base register to get the CFA.
    pub sp_offset: i16,
    /// Where the caller's rbp was saved, relative to `bp_reg`.
    pub bp_offset: i16,
    /// The CFA's base register (`reg::*`).
    pub sp_reg: u8,
    /// The saved rbp's base register (`reg::*`).
    pub bp_reg: u8,
    /// The frame type.
    pub kind: OrcType,
    /// The ip is an exact address (interrupted), not a return address.
    pub signal: bool,
}

impl OrcEntry {
    /// The 6-byte entry in `version`'s layout.
    pub fn decode(bytes: [u8; 6], version: OrcVersion) -> OrcEntry {
        let sp_offset = i16::from_le_bytes([bytes[0], bytes[1]]);
        let bp_offset = i16::from_le_bytes([bytes[2], bytes[3]]);
        let bits = u16::from_le_bytes([bytes[4], bytes[5]]);
        let sp_reg = (bits & 0xf) as u8;
        let bp_reg = ((bits >> 4) & 0xf) as u8;
        let (kind, signal) = match version {
            OrcVersion::V1 | OrcVersion::V2 => {
                let end_bit = if version == OrcVersion::V1 { 10 } else { 11 };
                let end = bits & (1 << end_bit) != 0;
                let kind = match (bits >> 8) & 3 {
                    _ if sp_reg == reg::UNDEFINED && end => OrcType::EndOfStack,
                    _ if sp_reg == reg::UNDEFINED => OrcType::Undefined,
                    0 => OrcType::Call,
                    1 => OrcType::Regs,
                    2 => OrcType::RegsPartial,
                    _ => OrcType::Undefined,
                };
                let signal = match version {
                    // 6.2 and older: only the pt_regs types are signal frames.
                    OrcVersion::V1 => matches!(kind, OrcType::Regs | OrcType::RegsPartial),
                    _ => bits & (1 << 10) != 0,
                };
                (kind, signal)
            }
            OrcVersion::V3 => {
                let kind = match (bits >> 8) & 7 {
                    1 => OrcType::EndOfStack,
                    2 => OrcType::Call,
                    3 => OrcType::Regs,
                    4 => OrcType::RegsPartial,
                    _ => OrcType::Undefined,
                };
                (kind, bits & (1 << 11) != 0)
            }
        };
        OrcEntry {
            sp_offset,
            bp_offset,
            sp_reg,
            bp_reg,
            kind,
            signal,
        }
    }

    /// What the kernel assumes for code ORC does not know (`orc_fp_entry`):
    /// a frame-pointer frame.
    pub const FRAME_POINTER: OrcEntry = OrcEntry {
        sp_offset: 16,
        bp_offset: -16,
        sp_reg: reg::BP,
        bp_reg: reg::PREV_SP,
        kind: OrcType::Call,
        signal: false,
    };
}

/// A sorted ORC table: the ips (run-time addresses) and their entries.
#[derive(Clone, Debug, Default)]
pub struct OrcTable {
    ips: Vec<u64>,
    entries: Vec<OrcEntry>,
}

/// More entries than any kernel or module has (a 6.1 distro kernel has
/// about 600,000): a table claiming more is corrupt.
const MAX_ENTRIES: usize = 16 << 20;

impl OrcTable {
    /// Builds a table from the raw `.orc_unwind_ip` bytes (found at run-time
    /// address `ip_base`) and `.orc_unwind` bytes.
    pub fn parse(ip_base: u64, ips: &[u8], orcs: &[u8], version: OrcVersion) -> Result<OrcTable> {
        let n = ips.len() / 4;
        if n > MAX_ENTRIES || orcs.len() / 6 < n {
            return Err(Error::BadFile {
                path: "ORC tables".into(),
                what: format!("{} ips but {} entries of .orc_unwind", n, orcs.len() / 6),
            });
        }
        let mut pairs: Vec<(u64, OrcEntry)> = ips
            .chunks_exact(4)
            .zip(orcs.chunks_exact(6))
            .enumerate()
            .map(|(i, (ip, orc))| {
                let rel = i32::from_le_bytes([ip[0], ip[1], ip[2], ip[3]]);
                let at = ip_base.wrapping_add(4 * i as u64);
                let entry =
                    OrcEntry::decode([orc[0], orc[1], orc[2], orc[3], orc[4], orc[5]], version);
                (at.wrapping_add_signed(i64::from(rel)), entry)
            })
            .collect();
        if !pairs.windows(2).all(|w| w[0].0 <= w[1].0) {
            // Unsorted (kernels before 5.6): sort, keeping the original order
            // among equal ips so the real entry stays after a terminator.
            pairs.sort_by_key(|p| p.0);
        }
        let (ips, entries) = pairs.into_iter().unzip();
        Ok(OrcTable { ips, entries })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// The first and last ip covered.
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((*self.ips.first()?, *self.ips.last()?))
    }

    /// The entry for `ip`: the last one whose ip is at or below it (the
    /// rightmost of equal ips, as `__orc_find` picks it).
    pub fn find(&self, ip: u64) -> Option<OrcEntry> {
        let pos = self.ips.partition_point(|&a| a <= ip);
        self.entries.get(pos.checked_sub(1)?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sp_offset: i16, bp_offset: i16, bits: u16) -> [u8; 6] {
        let mut b = [0u8; 6];
        b[..2].copy_from_slice(&sp_offset.to_le_bytes());
        b[2..4].copy_from_slice(&bp_offset.to_le_bytes());
        b[4..].copy_from_slice(&bits.to_le_bytes());
        b
    }

    #[test]
    fn versions_from_release() {
        assert_eq!(OrcVersion::for_release("6.1.0-27-amd64"), OrcVersion::V1);
        assert_eq!(OrcVersion::for_release("5.4.0"), OrcVersion::V1);
        assert_eq!(OrcVersion::for_release("6.3.13"), OrcVersion::V2);
        assert_eq!(OrcVersion::for_release("6.12.117"), OrcVersion::V3);
        assert_eq!(OrcVersion::for_release("garbage"), OrcVersion::V3);
    }

    #[test]
    fn decode_each_layout() {
        // sp_reg=SP(5), bp_reg=PREV_SP(1), CALL.
        let v1 = OrcEntry::decode(entry(8, -16, 0x0015), OrcVersion::V1);
        assert_eq!(
            (v1.kind, v1.sp_reg, v1.bp_reg, v1.sp_offset, v1.bp_offset),
            (OrcType::Call, 5, 1, 8, -16)
        );
        assert!(!v1.signal);
        // v1 REGS (type 1) is a signal frame; v1 end-of-stack is sp_reg
        // UNDEFINED with the end bit (10).
        assert_eq!(
            OrcEntry::decode(entry(0, 0, 0x0105), OrcVersion::V1).kind,
            OrcType::Regs
        );
        assert!(OrcEntry::decode(entry(0, 0, 0x0105), OrcVersion::V1).signal);
        assert_eq!(
            OrcEntry::decode(entry(0, 0, 0x0400), OrcVersion::V1).kind,
            OrcType::EndOfStack
        );
        assert_eq!(
            OrcEntry::decode(entry(0, 0, 0x0000), OrcVersion::V1).kind,
            OrcType::Undefined
        );
        // v2: end moved to bit 11, signal at bit 10.
        assert_eq!(
            OrcEntry::decode(entry(0, 0, 0x0800), OrcVersion::V2).kind,
            OrcType::EndOfStack
        );
        assert!(OrcEntry::decode(entry(8, 0, 0x0405), OrcVersion::V2).signal);
        // v3: type is three bits, signal bit 11.
        let v3 = OrcEntry::decode(entry(8, 0, 0x0205), OrcVersion::V3);
        assert_eq!((v3.kind, v3.signal), (OrcType::Call, false));
        assert_eq!(
            OrcEntry::decode(entry(0, 0, 0x0100), OrcVersion::V3).kind,
            OrcType::EndOfStack
        );
        assert_eq!(
            OrcEntry::decode(entry(0, 0, 0x0b05), OrcVersion::V3).kind,
            OrcType::Regs
        );
        assert!(OrcEntry::decode(entry(0, 0, 0x0b05), OrcVersion::V3).signal);
    }

    #[test]
    fn place_relative_ips_and_rightmost_lookup() {
        // Three entries at base 0x1000: ips 0x1000+0x10, 0x1004+0x0c (=0x1010,
        // a duplicate), 0x1008+0x28 (=0x1030).
        let mut ips = Vec::new();
        for rel in [0x10i32, 0x0c, 0x28] {
            ips.extend_from_slice(&rel.to_le_bytes());
        }
        let mut orcs = Vec::new();
        orcs.extend_from_slice(&entry(0, 0, 0x0000)); // terminator
        orcs.extend_from_slice(&entry(8, 0, 0x0205)); // real
        orcs.extend_from_slice(&entry(16, 0, 0x0205));
        let t = OrcTable::parse(0x1000, &ips, &orcs, OrcVersion::V3).unwrap();
        assert_eq!(t.span(), Some((0x1010, 0x1030)));
        assert_eq!(t.find(0x1010).unwrap().sp_offset, 8);
        assert_eq!(t.find(0x102f).unwrap().sp_offset, 8);
        assert_eq!(t.find(0x1030).unwrap().sp_offset, 16);
        assert!(t.find(0x100f).is_none());
    }

    #[test]
    fn short_entry_section_is_an_error() {
        assert!(OrcTable::parse(0, &[0; 8], &[0; 6], OrcVersion::V3).is_err());
    }
}
