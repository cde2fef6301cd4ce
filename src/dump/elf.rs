//! ELF vmcores: kdump's `/proc/vmcore` (and `makedumpfile -E`), QEMU's
//! `dump-guest-memory` with and without paging.
//!
//! Only the physical view is built from the program headers: `p_paddr`,
//! `p_offset`, `p_filesz`, `p_memsz` of every `PT_LOAD`. Bytes between
//! `p_filesz` and `p_memsz` were excluded from the dump and fault. QEMU's
//! paging dumps describe the same physical pages many times over; the map
//! keeps each physical byte once.

use std::path::Path;

use super::Mapped;
use crate::addr::{PhysAddr, VirtAddr};
use crate::bytes::{le32, le64};
use crate::memory::MemorySource;
use crate::notes::Notes;
use crate::{Error, Result};

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PN_XNUM: u16 = 0xffff;
/// No sane dump has more program headers than this (QEMU paging dumps of
/// large guests have tens of thousands).
const MAX_PHDRS: usize = 1 << 22;

/// A range of physical memory backed by bytes of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    paddr: u64,
    len: u64,
    offset: u64,
}

/// What an ELF vmcore's headers say.
#[derive(Debug)]
pub struct ElfVmcore {
    file: Mapped,
    runs: Vec<Run>,
    /// Ranges described by `p_memsz` but not in the file: (start, end).
    excluded: Vec<(u64, u64)>,
    /// Physical ranges whose bytes lie past the end of a truncated file.
    truncated: Vec<(u64, u64)>,
    notes: Notes,
    /// `PT_LOAD`s whose `p_vaddr` is a kernel virtual address (kdump style).
    vaddr_loads: Vec<(VirtAddr, PhysAddr, u64)>,
    loads: usize,
    /// `e_flags & 1`: makedumpfile marked the dump incomplete.
    incomplete: bool,
    /// `PT_LOAD`s that overlap with different bytes, described.
    conflict: Option<String>,
}

impl ElfVmcore {
    /// Parse the headers of an ELF vmcore already mapped in memory.
    pub(crate) fn parse(path: &Path, file: Mapped) -> Result<ElfVmcore> {
        let d = file.bytes();
        let bad = |what: &str| Error::bad_file(path, format!("ELF vmcore: {what}"));
        if d.get(..4) != Some(b"\x7fELF") {
            return Err(bad("no ELF magic"));
        }
        if d.get(4) != Some(&2) || d.get(5) != Some(&1) {
            return Err(bad(
                "not a 64-bit little-endian ELF (only x86_64 dumps are supported)",
            ));
        }
        let u16_at = |at: usize| d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let e_type = u16_at(16).ok_or_else(|| bad("truncated header"))?;
        let e_machine = u16_at(18).ok_or_else(|| bad("truncated header"))?;
        if e_type != 4 {
            return Err(bad(&format!("e_type {e_type} is not ET_CORE")));
        }
        if e_machine != 62 {
            return Err(bad(&format!("e_machine {e_machine} is not x86_64 (62)")));
        }
        let e_flags = le32(d, 48).ok_or_else(|| bad("truncated header"))?;
        let e_phoff = le64(d, 32).ok_or_else(|| bad("truncated header"))?;
        let e_shoff = le64(d, 40).ok_or_else(|| bad("truncated header"))?;
        let e_phentsize = u16_at(54).ok_or_else(|| bad("truncated header"))?;
        let mut phnum = usize::from(u16_at(56).ok_or_else(|| bad("truncated header"))?);
        if phnum == usize::from(PN_XNUM) {
            // The real count is in section header 0's sh_info.
            let at = usize::try_from(e_shoff).map_err(|_| bad("e_shoff out of range"))?;
            phnum = at
                .checked_add(44)
                .and_then(|sh_info| le32(d, sh_info))
                .ok_or_else(|| bad("PN_XNUM but no section header 0"))?
                as usize;
        }
        if e_phentsize != 56 {
            return Err(bad(&format!("e_phentsize {e_phentsize}, expected 56")));
        }
        if phnum > MAX_PHDRS {
            return Err(bad(&format!("{phnum} program headers is absurd")));
        }
        let phoff = usize::try_from(e_phoff).map_err(|_| bad("e_phoff out of range"))?;
        let table = phoff
            .checked_add(phnum * 56)
            .and_then(|end| d.get(phoff..end))
            .ok_or_else(|| bad("program headers lie past the end of the file"))?;

        let file_len = d.len() as u64;
        let mut runs = Vec::new();
        let mut excluded = Vec::new();
        let mut truncated = Vec::new();
        let mut vaddr_loads = Vec::new();
        let mut note_blob = Vec::new();
        let mut loads = 0;
        for ph in table.chunks_exact(56) {
            let p_type = le32(ph, 0).unwrap_or(0);
            let (offset, vaddr, paddr) = (
                le64(ph, 8).unwrap_or(0),
                le64(ph, 16).unwrap_or(0),
                le64(ph, 24).unwrap_or(0),
            );
            let (filesz, memsz) = (le64(ph, 32).unwrap_or(0), le64(ph, 40).unwrap_or(0));
            match p_type {
                PT_NOTE => {
                    let end = offset.saturating_add(filesz).min(file_len);
                    if let Some(blob) = d.get(offset as usize..end as usize) {
                        note_blob.extend_from_slice(blob);
                        // Each PT_NOTE is a whole note list; keep them apart.
                        while note_blob.len() % 4 != 0 {
                            note_blob.push(0);
                        }
                    }
                }
                PT_LOAD => {
                    loads += 1;
                    let in_file = file_len.saturating_sub(offset).min(filesz);
                    if in_file > 0 {
                        runs.push(Run {
                            paddr,
                            len: in_file,
                            offset,
                        });
                    }
                    if in_file < filesz {
                        truncated
                            .push((paddr.saturating_add(in_file), paddr.saturating_add(filesz)));
                    }
                    if memsz > filesz {
                        excluded.push((paddr.saturating_add(filesz), paddr.saturating_add(memsz)));
                    }
                    if vaddr >= 0xffff_8000_0000_0000 && filesz > 0 {
                        vaddr_loads.push((VirtAddr(vaddr), PhysAddr(paddr), filesz));
                    }
                }
                _ => {}
            }
        }
        let notes = Notes::parse(&note_blob);
        let conflict = conflicting_overlaps(&runs, d);
        Ok(ElfVmcore {
            file,
            runs: dedup_runs(runs),
            excluded,
            truncated,
            notes,
            vaddr_loads,
            loads,
            incomplete: e_flags & 1 != 0,
            conflict,
        })
    }

    /// The notes of the dump.
    pub fn notes(&self) -> &Notes {
        &self.notes
    }

    /// Number of `PT_LOAD` headers.
    pub fn load_count(&self) -> usize {
        self.loads
    }

    /// Bytes of physical memory the file holds.
    pub fn phys_bytes(&self) -> u64 {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Bytes of physical memory described but left out (`p_memsz > p_filesz`).
    pub fn excluded_bytes(&self) -> u64 {
        self.excluded.iter().map(|(s, e)| e - s).sum()
    }

    /// Bytes lost because the file is shorter than its headers say.
    pub fn truncated_bytes(&self) -> u64 {
        self.truncated.iter().map(|(s, e)| e - s).sum()
    }

    /// `PT_LOAD`s that describe the same physical bytes with different
    /// contents (the first byte of each run wins), named; aliases with the
    /// same contents (QEMU's paging dumps) are not conflicts.
    pub fn overlap_conflict(&self) -> Option<&str> {
        self.conflict.as_deref()
    }

    /// Whether makedumpfile marked the dump incomplete (`e_flags & 1`).
    pub fn incomplete(&self) -> bool {
        self.incomplete
    }

    /// Kernel virtual mappings recorded in `p_vaddr` (kdump style, QEMU paging).
    pub fn virtual_loads(&self) -> &[(VirtAddr, PhysAddr, u64)] {
        &self.vaddr_loads
    }

    fn why_missing(&self, addr: u64) -> &'static str {
        let within = |ranges: &[(u64, u64)]| ranges.iter().any(|&(s, e)| (s..e).contains(&addr));
        if within(&self.excluded) {
            "excluded from the dump"
        } else if within(&self.truncated) {
            "past the end of the truncated dump file"
        } else {
            "not in the dump"
        }
    }
}

impl MemorySource for ElfVmcore {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        let data = self.file.bytes();
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.0.wrapping_add(done as u64);
            // The last run starting at or below `at`.
            let i = self.runs.partition_point(|r| r.paddr <= at);
            let run = i
                .checked_sub(1)
                .map(|i| self.runs[i])
                .filter(|r| at - r.paddr < r.len);
            let Some(run) = run else {
                return Err(Error::fault(
                    "physical",
                    at,
                    buf.len() - done,
                    self.why_missing(at),
                ));
            };
            let n = ((run.len - (at - run.paddr)) as usize).min(buf.len() - done);
            let off = (run.offset + (at - run.paddr)) as usize;
            buf[done..done + n].copy_from_slice(&data[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

/// Physical ranges that two `PT_LOAD`s both hold, with different bytes:
/// each run against the next in physical order (aliases of the same bytes
/// are silent). Described once: how many, and the first.
fn conflicting_overlaps(runs: &[Run], data: &[u8]) -> Option<String> {
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by_key(|r| (r.paddr, std::cmp::Reverse(r.len)));
    let bytes = |r: &Run, from: u64, len: u64| {
        let at = (r.offset + (from - r.paddr)) as usize;
        data.get(at..at.checked_add(len as usize)?)
    };
    let mut first = None;
    let mut count = 0usize;
    for w in sorted.windows(2) {
        let (a, b) = (w[0], w[1]);
        let a_end = a.paddr.saturating_add(a.len);
        if b.paddr >= a_end {
            continue;
        }
        let len = a_end.min(b.paddr.saturating_add(b.len)) - b.paddr;
        if bytes(a, b.paddr, len) != bytes(b, b.paddr, len) {
            count += 1;
            first.get_or_insert((a.paddr, a_end, b.paddr, b.paddr + b.len));
        }
    }
    let (a0, a1, b0, b1) = first?;
    Some(format!(
        "{count} overlapping PT_LOAD pair{} with different contents, the first physical \
         {a0:#x}..{a1:#x} and {b0:#x}..{b1:#x}: the one starting lower (or the longer) is read",
        if count == 1 { "" } else { "s" }
    ))
}

/// Sort runs by physical address and keep every physical byte once.
fn dedup_runs(mut runs: Vec<Run>) -> Vec<Run> {
    runs.sort_by_key(|r| (r.paddr, std::cmp::Reverse(r.len)));
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    let mut covered = 0u64;
    for mut r in runs {
        let end = r.paddr.saturating_add(r.len);
        if !out.is_empty() && end <= covered {
            continue;
        }
        if !out.is_empty() && r.paddr < covered {
            let skip = covered - r.paddr;
            r.paddr = covered;
            r.offset += skip;
            r.len -= skip;
        }
        // Merge with the previous run when both are contiguous in the file too.
        if let Some(last) = out.last_mut() {
            if last.paddr + last.len == r.paddr && last.offset + last.len == r.offset {
                last.len += r.len;
                covered = end;
                continue;
            }
        }
        covered = end;
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_with_different_bytes_are_named_and_aliases_are_not() {
        let data: Vec<u8> = (0..64u8).chain(0..64u8).collect();
        // Physical 0..64 twice, from both copies: the same bytes.
        let alias = [
            Run {
                paddr: 0,
                len: 64,
                offset: 0,
            },
            Run {
                paddr: 0,
                len: 64,
                offset: 64,
            },
        ];
        assert_eq!(conflicting_overlaps(&alias, &data), None);
        // Physical 0..64, then 32..64 from bytes that differ.
        let clash = [
            Run {
                paddr: 0,
                len: 64,
                offset: 0,
            },
            Run {
                paddr: 32,
                len: 32,
                offset: 64,
            },
        ];
        let msg = conflicting_overlaps(&clash, &data).expect("a conflict");
        assert!(msg.contains("0x0..0x40 and 0x20..0x40"), "{msg}");
    }

    #[test]
    fn aliasing_runs_keep_each_physical_byte_once() {
        let runs = vec![
            Run {
                paddr: 0x2000,
                len: 0x1000,
                offset: 0x5000,
            },
            Run {
                paddr: 0x0,
                len: 0x3000,
                offset: 0x3000,
            },
            Run {
                paddr: 0x1000,
                len: 0x1000,
                offset: 0x4000,
            },
            Run {
                paddr: 0x8000,
                len: 0x1000,
                offset: 0x9000,
            },
        ];
        assert_eq!(
            dedup_runs(runs),
            vec![
                Run {
                    paddr: 0,
                    len: 0x3000,
                    offset: 0x3000
                },
                Run {
                    paddr: 0x8000,
                    len: 0x1000,
                    offset: 0x9000
                }
            ]
        );
    }
}
