//! The kernel's own symbol table, decoded from its memory: the compressed
//! kallsyms tables that `/proc/kallsyms` is printed from. With them a dump
//! needs no vmlinux to name its symbols.
//!
//! The tables (`scripts/kallsyms.c` writes them into `.rodata`):
//!
//! * `kallsyms_num_syms`: the number of symbols (a 32-bit integer);
//! * `kallsyms_names`: one entry per symbol, in address order: a length
//!   (one byte; since Linux 6.1 a length of 128 or more takes two bytes,
//!   the first with its top bit set and holding the low 7 bits), then that
//!   many indexes into the token table;
//! * `kallsyms_token_table` / `kallsyms_token_index`: 256 NUL-terminated
//!   tokens and the offset of each. A symbol's expanded tokens are its type
//!   letter (as `nm` prints it) followed by its name;
//! * `kallsyms_offsets` and `kallsyms_relative_base` (base-relative, every
//!   x86_64 kernel since 4.6): 32-bit offsets from the base. With
//!   `CONFIG_KALLSYMS_ABSOLUTE_PERCPU` (x86_64 SMP before 6.15) a
//!   non-negative offset is an absolute value (a zero-based per-CPU
//!   symbol, type `A`) and a negative one means `relative_base - 1 - off`;
//!   without it, offsets are unsigned. The mode is not written anywhere, so
//!   it is told from the table: kernel text is always below the base's
//!   positive range in absolute mode, so any negative offset means absolute
//!   per-CPU mode;
//! * or `kallsyms_addresses`, absolute 64-bit addresses (kernels built
//!   without base-relative kallsyms, before 6.11);
//! * or, since Ard Biesheuvel's "kallsyms: Get rid of kallsyms relative
//!   base" (posted January 2026, in Debian's 7.2 kernels), only
//!   `kallsyms_offsets`, each place-relative (`&offsets[i] + offsets[i]`,
//!   `offset_to_ptr`), with no `kallsyms_relative_base`. That change also
//!   made every label 4-byte aligned (`.balign 4`, 8 before on 64-bit) and
//!   VMCOREINFO stopped naming `kallsyms_relative_base`.
//!
//! `kallsyms_markers` and `kallsyms_seqs_of_names` only speed up the
//! kernel's own lookups; the whole table is decoded here once.
//!
//! Since Linux 6.0 (5fd8fea935a1, "vmcoreinfo: include kallsyms symbols")
//! VMCOREINFO carries the tables' addresses
//! (`SYMBOL(kallsyms_names)` and so on), run-time addresses that need no
//! KASLR offset; [`Location::from_vmcoreinfo`] reads them. With a vmlinux,
//! [`Location::from_symbols`] finds them by symbol instead.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::notes::VmcoreInfo;

/// More symbols than any kernel has (a distro kernel has ~200,000 with
/// `CONFIG_KALLSYMS_ALL`): a larger count is a damaged table.
pub const MAX_SYMS: u32 = 4_000_000;
/// `KSYM_NAME_LEN` (512 since Linux 6.1; 128 before).
const KSYM_NAME_LEN: usize = 512;

/// Where the tables are, as run-time addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// `kallsyms_num_syms`.
    pub num_syms: u64,
    /// `kallsyms_names`.
    pub names: u64,
    /// `kallsyms_token_table`.
    pub token_table: u64,
    /// `kallsyms_token_index`.
    pub token_index: u64,
    /// `kallsyms_offsets` and `kallsyms_relative_base`, or
    /// `kallsyms_addresses`.
    pub addresses: AddressTable,
}

/// How symbol addresses are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressTable {
    /// `kallsyms_offsets` (`int[]`) and `kallsyms_relative_base` (`unsigned long`).
    Relative {
        /// `kallsyms_offsets`.
        offsets: u64,
        /// `kallsyms_relative_base`.
        relative_base: u64,
    },
    /// `kallsyms_addresses` (`unsigned long[]`).
    Absolute {
        /// `kallsyms_addresses`.
        addresses: u64,
    },
    /// `kallsyms_offsets` alone, each entry relative to its own address
    /// ("kallsyms: Get rid of kallsyms relative base", 2026).
    PlaceRelative {
        /// `kallsyms_offsets`.
        offsets: u64,
    },
}

impl Location {
    /// The tables as VMCOREINFO names them (Linux 6.0 and later, 5fd8fea935a1);
    /// `None` when it does not name them all (older kernels: the caller
    /// falls back to the search by shape).
    pub fn from_vmcoreinfo(info: &VmcoreInfo) -> Option<Location> {
        Location::from_symbols(|name| info.symbol(name))
    }

    /// The tables found through a symbol lookup that gives run-time
    /// addresses (a vmlinux's symbols plus the KASLR offset).
    pub fn from_symbols(symbol: impl Fn(&str) -> Option<u64>) -> Option<Location> {
        let addresses = match (symbol("kallsyms_offsets"), symbol("kallsyms_relative_base")) {
            (Some(offsets), Some(relative_base)) => AddressTable::Relative {
                offsets,
                relative_base,
            },
            (offsets, None) => match (symbol("kallsyms_addresses"), offsets) {
                (Some(addresses), _) => AddressTable::Absolute { addresses },
                (None, Some(offsets)) => AddressTable::PlaceRelative { offsets },
                (None, None) => return None,
            },
            (None, Some(_)) => AddressTable::Absolute {
                addresses: symbol("kallsyms_addresses")?,
            },
        };
        Some(Location {
            num_syms: symbol("kallsyms_num_syms")?,
            names: symbol("kallsyms_names")?,
            token_table: symbol("kallsyms_token_table")?,
            token_index: symbol("kallsyms_token_index")?,
            addresses,
        })
    }
}

/// Whether 512 bytes look like `kallsyms_token_index`: 256 offsets from
/// 0, each token at least one byte plus its NUL and no longer than any
/// real token.
fn looks_like_token_index(b: &[u8]) -> bool {
    if b.len() < 512 || b[0] != 0 || b[1] != 0 {
        return false;
    }
    let mut prev = 0u16;
    for i in 1..256 {
        let v = u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
        let d = v.wrapping_sub(prev);
        if !(2..=64).contains(&d) {
            return false;
        }
        prev = v;
    }
    true
}

fn align8(v: u64) -> u64 {
    (v + 7) & !7
}

impl Location {
    /// Finds the tables with neither VMCOREINFO nor a vmlinux, by their
    /// shape, in the kernel image mapped at run-time `text` (`_text`) and
    /// up to `len` bytes after it (pages that do not read count as zeros;
    /// reading stops after 8 MiB that do not read at all):
    ///
    /// 1. `kallsyms_token_index` is 256 increasing 16-bit offsets from 0,
    ///    each step a token's length plus its NUL;
    /// 2. `kallsyms_token_table` ends just before it: the place where every
    ///    offset is preceded by a NUL;
    /// 3. `kallsyms_num_syms` is an 8-byte-aligned count followed, 8 bytes
    ///    on, by names that decode with those tokens; searched backwards;
    /// 4. `kallsyms_offsets`/`kallsyms_relative_base` are in one of the two
    ///    layouts `scripts/kallsyms.c` has written (before `num_syms` up to
    ///    Linux 6.1, after the token index since 6.2); the right one
    ///    decodes `_text` at `text`.
    ///
    /// Every label is 8-byte aligned (`.balign 8`). Gives `None` if the
    /// shape is not found.
    pub fn find(read: &ReadFn<'_>, text: u64, len: u64) -> Option<Location> {
        Location::search(read, text, text, len).map(|(loc, _)| loc)
    }

    /// [`Location::find`] over `[start, start + len)` (the kernel's
    /// read-only data, say, where the tables are), with the table it
    /// decoded. What the search read is not read again: through a live
    /// target every read costs.
    pub fn search(
        read: &ReadFn<'_>,
        text: u64,
        start: u64,
        len: u64,
    ) -> Option<(Location, Kallsyms)> {
        // Small steps: through QEMU's gdbstub, every 2 KiB past the
        // tables is a packet.
        const CHUNK: u64 = 256 << 10;
        // The image, as far as it reads.
        let mut image = Vec::new();
        let mut at = 0;
        let mut missing = 0;
        let mut o = 0usize;
        while at < len && missing < 8 {
            let mut buf = vec![0u8; CHUNK.min(len - at) as usize];
            if read(start + at, &mut buf).is_err() {
                // Page by page: a dump leaves out zero and free pages
                // (makedumpfile -d 31; the kernel frees the gap between
                // text and rodata), which read as zeros here. Eight chunks
                // in a row with no page at all are past the image.
                let mut any = false;
                for (i, page) in buf.chunks_mut(4096).enumerate() {
                    if read(start + at + 4096 * i as u64, page).is_ok() {
                        any = true;
                    } else {
                        page.fill(0);
                    }
                }
                missing = if any { 0 } else { missing + 1 };
            } else {
                missing = 0;
            }
            image.extend_from_slice(&buf);
            at += buf.len() as u64;
            // Scan what is new (the tables before a token index are
            // already read: they come earlier in the image).
            while o + 512 <= image.len() {
                if looks_like_token_index(&image[o..o + 512]) {
                    // Reads of what is already in `image` are served from it.
                    let cached = |addr: u64, buf: &mut [u8]| -> Result<()> {
                        let off = addr.wrapping_sub(start) as usize;
                        let have = if addr >= start && off < image.len() {
                            (image.len() - off).min(buf.len())
                        } else {
                            0
                        };
                        buf[..have].copy_from_slice(&image[off.min(image.len())..][..have]);
                        if have < buf.len() {
                            read(addr + have as u64, &mut buf[have..])?;
                        }
                        Ok(())
                    };
                    if let Some(found) = Location::at_index(&image, o, start, text, &cached) {
                        return Some(found);
                    }
                }
                // Labels are 8-aligned up to 7.1 and 4-aligned since
                // "kallsyms: Get rid of kallsyms relative base".
                o += 4;
            }
        }
        None
    }

    /// The tables around a token index candidate at `o` in `image` (the
    /// kernel image from run-time `start`; `_text` is at `text`), if they
    /// are there, and the table they hold.
    fn at_index(
        image: &[u8],
        o: usize,
        start: u64,
        text: u64,
        read: &ReadFn<'_>,
    ) -> Option<(Location, Kallsyms)> {
        let u32_at = |o: usize| -> Option<u32> {
            let b = image.get(o..o + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let index: Vec<usize> = image[o..o + 512]
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
            .collect();
        // The token table: 8-aligned, ending before the index.
        let table_min = index[255] + 2;
        let table = (0..=8192usize / 4)
            .map(|k| o.wrapping_sub(table_min + 4 * k) & !3)
            .find(|&t| {
                t < o
                    && t + table_min <= o
                    && index[1..]
                        .iter()
                        .all(|&i| image.get(t + i - 1) == Some(&0) && image.get(t + i) != Some(&0))
                    && image.get(t) != Some(&0)
            });
        let t = table?;
        let tokens: Vec<&[u8]> = index
            .iter()
            .map(|&i| {
                let s = &image[t + i..];
                &s[..s.iter().position(|&b| b == 0).unwrap_or(0)]
            })
            .collect();
        // num_syms and names, searched backwards from the token table.
        let names_ok = |n: usize, names: usize| -> Option<usize> {
            // Decodes every name; gives the stream's length.
            let mut p = names;
            for _ in 0..n {
                let mut l = usize::from(*image.get(p)?);
                p += 1;
                if l & 0x80 != 0 {
                    l = (l & 0x7f) | usize::from(*image.get(p)?) << 7;
                    p += 1;
                }
                if l == 0 {
                    return None;
                }
                let first = *image.get(p)?;
                // `nm`'s letter, or `?` for a few assembler symbols.
                if !tokens[usize::from(first)].first()?.is_ascii_graphic() {
                    return None;
                }
                p += l;
            }
            (p <= t).then_some(p - names)
        };
        // Up to 7.1 the names start 8 bytes after the count (8-aligned,
        // padded); since the 4-byte alignment, right after it.
        let mut a = t & !3;
        let lowest = t.saturating_sub(64 << 20);
        let mut found = None;
        while a >= lowest + 8 && found.is_none() {
            a -= 4;
            let Some(n) = u32_at(a) else { continue };
            if !(1000..=MAX_SYMS).contains(&n) {
                continue;
            }
            let mut gaps = vec![4];
            if a % 8 == 0 && u32_at(a + 4) == Some(0) {
                gaps.push(8);
            }
            for gap in gaps {
                if found.is_none()
                    && names_ok(16.min(n as usize), a + gap).is_some()
                    && names_ok(n as usize, a + gap).is_some()
                {
                    found = Some((a, gap, n));
                }
            }
        }
        let (a, gap, n) = found?;
        let abs = |off: usize| start + off as u64;
        let n = u64::from(n);
        let after_index = align8(abs(o) + 512);
        let before_num = abs(a) - 8;
        let layouts = [
            // Since "kallsyms: Get rid of kallsyms relative base" (2026):
            // place-relative offsets right after the token index.
            AddressTable::PlaceRelative {
                offsets: abs(o) + 512,
            },
            // Since 6.2: offsets after the token index, then the base.
            AddressTable::Relative {
                offsets: after_index,
                relative_base: align8(after_index + 4 * n),
            },
            // Up to 6.1: offsets, the base, then num_syms.
            AddressTable::Relative {
                offsets: (before_num - 4 * n) & !7,
                relative_base: before_num,
            },
        ];
        for addresses in layouts {
            // The place-relative layout goes with the 4-byte gap, the
            // others with the 8-byte one.
            if matches!(addresses, AddressTable::PlaceRelative { .. }) != (gap == 4) {
                continue;
            }
            let loc = Location {
                num_syms: abs(a),
                names: abs(a) + gap as u64,
                token_table: abs(t),
                token_index: abs(o),
                addresses,
            };
            if let Ok(ks) = Kallsyms::read(read, &loc) {
                if ks.lookup("_text").is_some_and(|s| s.addr == text) {
                    return Some((loc, ks));
                }
            }
        }
        None
    }
}

/// One symbol, as `/proc/kallsyms` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KSymbol {
    /// Its run-time address.
    pub addr: u64,
    /// `nm`'s type letter: `T` text, `t` local text, `D`/`d` data, `R`/`r`
    /// read-only data, `B`/`b` bss, `A` absolute (x86_64 per-CPU symbols).
    pub kind: char,
    /// Its name.
    pub name: String,
}

/// The decoded table, in the kernel's (address) order.
#[derive(Debug)]
pub struct Kallsyms {
    symbols: Vec<KSymbol>,
    /// Whether offsets were read in absolute per-CPU mode.
    pub absolute_percpu: bool,
    by_name: OnceLock<HashMap<String, usize>>,
    /// Indexes of `symbols`, sorted by address, then by table order.
    by_addr: OnceLock<Vec<u32>>,
}

/// Reads kernel virtual memory: `read(addr, buf)` fills `buf` or fails.
pub type ReadFn<'a> = dyn Fn(u64, &mut [u8]) -> Result<()> + 'a;

fn bad(what: String) -> Error {
    Error::BadFile {
        path: "kernel memory".into(),
        what: format!("kallsyms: {what}"),
    }
}

fn read_vec(read: &ReadFn<'_>, addr: u64, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    read(addr, &mut buf).map_err(|e| bad(format!("cannot read {what} at {addr:#x}: {e}")))?;
    Ok(buf)
}

/// Reads `kallsyms_names` in chunks as the decoder goes.
struct Stream<'r, 'a> {
    read: &'r ReadFn<'a>,
    base: u64,
    /// Bytes of the stream already in `buf`, from `buf_at`.
    buf: Vec<u8>,
    buf_at: usize,
    pos: usize,
}

const CHUNK: usize = 64 << 10;

impl Stream<'_, '_> {
    fn byte(&mut self) -> Result<u8> {
        if self.pos >= self.buf_at + self.buf.len() {
            self.fill()?;
        }
        let b = self.buf[self.pos - self.buf_at];
        self.pos += 1;
        Ok(b)
    }

    fn fill(&mut self) -> Result<()> {
        let at = self.base.wrapping_add(self.pos as u64);
        // Read a whole chunk, or if that faults (the stream ends near an
        // unmapped page), whatever is left up to the next page boundary.
        let mut buf = vec![0u8; CHUNK];
        if (self.read)(at, &mut buf).is_err() {
            let to_page = (0x1000 - (at & 0xfff)) as usize;
            buf = read_vec(self.read, at, to_page, "kallsyms_names")?;
        }
        self.buf = buf;
        self.buf_at = self.pos;
        Ok(())
    }
}

impl Kallsyms {
    /// Decodes the whole table.
    pub fn read(read: &ReadFn<'_>, loc: &Location) -> Result<Kallsyms> {
        let n = read_vec(read, loc.num_syms, 4, "kallsyms_num_syms")?;
        let num = u32::from_le_bytes([n[0], n[1], n[2], n[3]]);
        if num == 0 || num > MAX_SYMS {
            return Err(bad(format!(
                "kallsyms_num_syms is {num}: not a symbol count (damaged, or not a kallsyms table)"
            )));
        }
        let num = num as usize;
        // The token index, then the tokens it points at.
        let idx = read_vec(read, loc.token_index, 512, "kallsyms_token_index")?;
        let index: Vec<usize> = idx
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
            .collect();
        let table_len = index.iter().max().copied().unwrap_or(0) + 256;
        let table = read_vec(read, loc.token_table, table_len, "kallsyms_token_table")?;
        let tokens: Vec<&[u8]> = index
            .iter()
            .map(|&start| {
                let t = &table[start.min(table.len())..];
                let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
                &t[..end]
            })
            .collect();
        // The addresses.
        let (addrs, absolute_percpu) = match loc.addresses {
            AddressTable::Relative {
                offsets,
                relative_base,
            } => {
                let raw = read_vec(read, offsets, num * 4, "kallsyms_offsets")?;
                let b = read_vec(read, relative_base, 8, "kallsyms_relative_base")?;
                let base = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                let offs: Vec<i32> = raw
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let absolute = offs.iter().any(|&o| o < 0);
                let addrs = offs
                    .iter()
                    .map(|&o| {
                        if !absolute {
                            base.wrapping_add(u64::from(o as u32))
                        } else if o >= 0 {
                            o as u64
                        } else {
                            base.wrapping_sub(1).wrapping_sub(o as i64 as u64)
                        }
                    })
                    .collect::<Vec<u64>>();
                (addrs, absolute)
            }
            AddressTable::PlaceRelative { offsets } => {
                let raw = read_vec(read, offsets, num * 4, "kallsyms_offsets")?;
                let addrs = raw
                    .chunks_exact(4)
                    .enumerate()
                    .map(|(i, c)| {
                        let o = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        offsets
                            .wrapping_add(4 * i as u64)
                            .wrapping_add_signed(i64::from(o))
                    })
                    .collect();
                (addrs, false)
            }
            AddressTable::Absolute { addresses } => {
                let raw = read_vec(read, addresses, num * 8, "kallsyms_addresses")?;
                let addrs = raw
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                (addrs, false)
            }
        };
        // The names.
        let mut stream = Stream {
            read,
            base: loc.names,
            buf: Vec::new(),
            buf_at: 0,
            pos: 0,
        };
        let mut symbols = Vec::with_capacity(num);
        let mut expanded = Vec::with_capacity(64);
        for (i, &addr) in addrs.iter().enumerate() {
            let mut len = usize::from(stream.byte()?);
            if len & 0x80 != 0 {
                len = (len & 0x7f) | usize::from(stream.byte()?) << 7;
            }
            if len == 0 {
                return Err(bad(format!("symbol {i} of {num} has an empty name")));
            }
            expanded.clear();
            for _ in 0..len {
                let t = stream.byte()?;
                expanded.extend_from_slice(tokens[usize::from(t)]);
            }
            if expanded.len() > KSYM_NAME_LEN + 1 {
                return Err(bad(format!(
                    "symbol {i} of {num} expands to {} bytes, more than KSYM_NAME_LEN",
                    expanded.len()
                )));
            }
            let Some((&kind, name)) = expanded.split_first() else {
                return Err(bad(format!("symbol {i} of {num} expands to nothing")));
            };
            if !kind.is_ascii_graphic() {
                return Err(bad(format!(
                    "symbol {i} of {num} has type {kind:#04x}, not a type letter (damaged table)"
                )));
            }
            symbols.push(KSymbol {
                addr,
                kind: char::from(kind),
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        Ok(Kallsyms {
            symbols,
            absolute_percpu,
            by_name: OnceLock::new(),
            by_addr: OnceLock::new(),
        })
    }

    /// Every symbol, in the kernel's order (that of `/proc/kallsyms`).
    pub fn symbols(&self) -> &[KSymbol] {
        &self.symbols
    }

    /// The first symbol of this name.
    pub fn lookup(&self, name: &str) -> Option<&KSymbol> {
        let map = self.by_name.get_or_init(|| {
            let mut m = HashMap::with_capacity(self.symbols.len());
            for (i, s) in self.symbols.iter().enumerate() {
                m.entry(s.name.clone()).or_insert(i);
            }
            m
        });
        map.get(name).map(|&i| &self.symbols[i])
    }

    /// The symbol at or before `addr` (per-CPU `A` symbols aside), and how
    /// far past it `addr` is.
    pub fn at(&self, addr: u64) -> Option<(&KSymbol, u64)> {
        let order = self.by_addr.get_or_init(|| {
            let mut v: Vec<u32> = (0..self.symbols.len() as u32)
                .filter(|&i| self.symbols[i as usize].kind != 'A')
                .collect();
            v.sort_by_key(|&i| (self.symbols[i as usize].addr, i));
            v
        });
        let pos = order.partition_point(|&i| self.symbols[i as usize].addr <= addr);
        let first = order.get(pos.checked_sub(1)?)?;
        // Among symbols at one address, the first in table order.
        let a = self.symbols[*first as usize].addr;
        let start = order[..pos].partition_point(|&i| self.symbols[i as usize].addr < a);
        let s = &self.symbols[order[start] as usize];
        Some((s, addr - s.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny kernel image: tables at fixed addresses in a byte array.
    struct Image {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Image {
        fn put(&mut self, at: u64, data: &[u8]) {
            let o = (at - self.base) as usize;
            self.bytes[o..o + data.len()].copy_from_slice(data);
        }
        fn read(&self, at: u64, buf: &mut [u8]) -> Result<()> {
            let o = at.checked_sub(self.base).map(|o| o as usize);
            match o.and_then(|o| self.bytes.get(o..o + buf.len())) {
                Some(src) => {
                    buf.copy_from_slice(src);
                    Ok(())
                }
                None => Err(Error::fault("virtual", at, buf.len(), "outside the image")),
            }
        }
    }

    const B: u64 = 0xffff_ffff_8100_0000;

    /// Tokens: 0 "T", 1 "t", 2 "A", 3 "_text", 4 "foo", 5 "per", 6 "cpu",
    /// and token i (7..256) the single byte i.
    fn image(names: &[Vec<u8>], offsets: &[i32], num: u32) -> (Image, Location) {
        let mut img = Image {
            base: B,
            bytes: vec![0; 0x20000],
        };
        let toks: Vec<Vec<u8>> = (0..256u32)
            .map(|i| match i {
                0 => b"T".to_vec(),
                1 => b"t".to_vec(),
                2 => b"A".to_vec(),
                3 => b"_text".to_vec(),
                4 => b"foo".to_vec(),
                5 => b"per".to_vec(),
                6 => b"cpu".to_vec(),
                i => vec![i as u8],
            })
            .collect();
        let mut table = Vec::new();
        let mut index = Vec::new();
        for t in &toks {
            index.extend_from_slice(&(table.len() as u16).to_le_bytes());
            table.extend_from_slice(t);
            table.push(0);
        }
        let loc = Location {
            num_syms: B,
            names: B + 0x100,
            token_table: B + 0x8000,
            token_index: B + 0x9000,
            addresses: AddressTable::Relative {
                offsets: B + 0xa000,
                relative_base: B + 0x10,
            },
        };
        img.put(loc.num_syms, &num.to_le_bytes());
        img.put(B + 0x10, &B.to_le_bytes());
        img.put(loc.token_table, &table);
        img.put(loc.token_index, &index);
        let mut stream = Vec::new();
        for n in names {
            if n.len() >= 128 {
                stream.push(0x80 | (n.len() & 0x7f) as u8);
                stream.push((n.len() >> 7) as u8);
            } else {
                stream.push(n.len() as u8);
            }
            stream.extend_from_slice(n);
        }
        img.put(loc.names, &stream);
        let offs: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        img.put(B + 0xa000, &offs);
        (img, loc)
    }

    #[test]
    fn decodes_tokens_offsets_and_big_names() {
        let long: Vec<u8> = std::iter::once(0u8).chain([b'x'; 200]).collect();
        let names = vec![vec![2, 5, 6], vec![0, 3], vec![1, 4, b'2'], long];
        // Absolute per-CPU mode: 0x1000 is absolute; -1 is the base itself.
        let (img, loc) = image(&names, &[0x1000, -1, -0x11, -0x21], 4);
        let ks = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap();
        assert!(ks.absolute_percpu);
        let s = ks.symbols();
        assert_eq!(
            (s[0].kind, s[0].name.as_str(), s[0].addr),
            ('A', "percpu", 0x1000)
        );
        assert_eq!(
            (s[1].kind, s[1].name.as_str(), s[1].addr),
            ('T', "_text", B)
        );
        assert_eq!(
            (s[2].kind, s[2].name.as_str(), s[2].addr),
            ('t', "foo2", B + 0x10)
        );
        assert_eq!(s[3].name.len(), 200);
        assert_eq!(ks.lookup("foo2").unwrap().addr, B + 0x10);
        assert_eq!(ks.at(B + 0x15).unwrap().0.name, "foo2");
        assert_eq!(ks.at(B + 0x15).unwrap().1, 5);
    }

    #[test]
    fn place_relative_offsets_without_a_base() {
        // Each entry is relative to its own address: offsets at B + 0xa000,
        // so entry 0 = -0xa000 is B and entry 1 = 0x20 - 0xa004 is B + 0x20.
        let names = vec![vec![0, 3], vec![1, 4]];
        let (img, mut loc) = image(&names, &[-0xa000, 0x20 - 0xa004], 2);
        loc.addresses = AddressTable::PlaceRelative {
            offsets: B + 0xa000,
        };
        let ks = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap();
        assert!(!ks.absolute_percpu);
        assert_eq!(ks.symbols()[0].addr, B);
        assert_eq!(ks.symbols()[1].addr, B + 0x20);
        // VMCOREINFO without kallsyms_relative_base (7.x) names this layout.
        let named = |n: &str| match n {
            "kallsyms_relative_base" | "kallsyms_addresses" => None,
            _ => Some(B + 0xa000),
        };
        assert_eq!(
            Location::from_symbols(named).unwrap().addresses,
            AddressTable::PlaceRelative {
                offsets: B + 0xa000
            }
        );
    }

    #[test]
    fn unsigned_offsets_without_absolute_percpu() {
        let names = vec![vec![0, 3], vec![1, 4]];
        let (img, loc) = image(&names, &[0, 0x20], 2);
        let ks = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap();
        assert!(!ks.absolute_percpu);
        assert_eq!(ks.symbols()[1].addr, B + 0x20);
    }

    #[test]
    fn damaged_tables_are_errors() {
        let names = vec![vec![0, 3], vec![1, 4]];
        let (img, loc) = image(&names, &[0, 0x20], 0);
        let err = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap_err();
        assert!(err.to_string().contains("kallsyms_num_syms is 0"), "{err}");
        let (img, loc) = image(&names, &[0, 0x20], u32::MAX);
        assert!(Kallsyms::read(&|a, b| img.read(a, b), &loc).is_err());
        // A count larger than the table: the stream runs into zeros.
        let (img, loc) = image(&names, &[0, 0x20], 50);
        let err = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap_err();
        assert!(err.to_string().contains("empty name"), "{err}");
        // A count so large the offsets fall off the image.
        let (img, loc) = image(&names, &[0, 0x20], 100_000);
        let err = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        // Type byte that is not a letter.
        let (img, loc) = image(&[vec![b' ', 4]], &[0], 1);
        let err = Kallsyms::read(&|a, b| img.read(a, b), &loc).unwrap_err();
        assert!(err.to_string().contains("not a type letter"), "{err}");
    }
}
