//! makedumpfile's kdump-compressed format (`KDUMP   `), as written by
//! makedumpfile and by QEMU's `dump-guest-memory -z/-l/-s`, and the
//! flattened stream format (`makedumpfile -F`, QEMU `kdump-*`) read in
//! place through an index of its chunks.
//!
//! Layout (block = page size): header, sub-header + notes, the two bitmaps
//! (RAM present; page dumped), page descriptors for every dumped page in
//! pfn order, page data. See `docs/ARCHITECTURE.md` and the format notes.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use super::Mapped;
use crate::addr::PhysAddr;
use crate::bytes::{le32, le64};
use crate::memory::MemorySource;
use crate::notes::{Notes, VmcoreInfo};
use crate::{Error, Result};

const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;
const PAGE_DESC_LEN: u64 = 24;
/// Decompressed pages kept, direct-mapped by pfn.
const CACHE_SLOTS: usize = 1024;

/// A direct-mapped cache of decompressed pages: slot = pfn % CACHE_SLOTS.
/// Pages are shared with readers, not copied out of it.
type PageCache = Mutex<Vec<Option<(u64, std::sync::Arc<[u8]>)>>>;

/// The bytes of the (logical) kdump file: the file itself, or a flattened
/// stream seen through its chunk index.
#[derive(Debug)]
enum Storage {
    Plain(Mapped),
    Flat { file: Mapped, index: FlatIndex },
}

impl Storage {
    fn len(&self) -> u64 {
        match self {
            Storage::Plain(m) => m.bytes().len() as u64,
            Storage::Flat { index, .. } => index.logical_len(),
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        match self {
            Storage::Plain(m) => {
                let d = m.bytes();
                let start = usize::try_from(off).map_err(|_| "offset out of range".to_owned())?;
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| d.get(start..end))
                    .ok_or_else(|| {
                        format!(
                            "offset {off:#x}+{:#x} is past the end of the file",
                            buf.len()
                        )
                    })?;
                buf.copy_from_slice(src);
                Ok(())
            }
            Storage::Flat { file, index } => index.read(file.bytes(), off, buf),
        }
    }

    /// How many bytes the storage really holds: a flattened stream's
    /// logical length can be far larger (a chunk at a wild offset), but
    /// every byte read comes from one of its chunks.
    fn stored_len(&self) -> u64 {
        match self {
            Storage::Plain(m) => m.bytes().len() as u64,
            Storage::Flat { index, .. } => index.stored_len(),
        }
    }

    fn read_vec(&self, off: u64, len: u64) -> std::result::Result<Vec<u8>, String> {
        if len > self.stored_len() {
            return Err(format!(
                "{len} bytes at {off:#x} is more than the whole file"
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.read_at(off, &mut v)?;
        Ok(v)
    }
}

/// Where each byte of a flattened stream belongs in the reassembled file.
#[derive(Debug, Default)]
pub(crate) struct FlatIndex {
    /// logical start → (logical end, offset in the flattened file); non-overlapping.
    /// (logical start, logical end, offset in the flattened file), sorted
    /// and non-overlapping: what reads search.
    ranges: Vec<(u64, u64, u64)>,
    chunks: usize,
    /// The end of the last byte written (the reassembled file's length).
    logical_len: u64,
    /// Bytes of the reassembled file the stream wrote.
    stored_len: u64,
}

impl FlatIndex {
    /// Index a flattened stream: a 4096-byte header, then `{offset, size}`
    /// big-endian chunk headers each followed by its bytes, ended by
    /// `{-1, -1}`. Later chunks win where they overlap earlier ones, as with
    /// `makedumpfile -R`.
    pub(crate) fn build(data: &[u8]) -> std::result::Result<FlatIndex, String> {
        let be64 = |at: usize| {
            data.get(at..at + 8)
                .map(|b| i64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
        };
        if data.get(..12) != Some(b"makedumpfile") {
            return Err("not a flattened makedumpfile stream".into());
        }
        if be64(16) != Some(1) {
            return Err(format!("flattened header type {:?}, expected 1", be64(16)));
        }
        let mut index = FlatIndex::default();
        let mut chunks = Vec::new();
        let mut pos = 4096usize;
        loop {
            let (Some(offset), Some(size)) = (be64(pos), be64(pos + 8)) else {
                return Err(format!(
                    "stream ends at {pos:#x} without an end marker (truncated?)"
                ));
            };
            if offset == -1 && size == -1 {
                break;
            }
            let start = pos + 16;
            let (Ok(offset), Ok(size)) = (u64::try_from(offset), usize::try_from(size)) else {
                return Err(format!(
                    "chunk at {pos:#x}: bad offset {offset} or size {size}"
                ));
            };
            let end = start.checked_add(size).filter(|&e| e <= data.len());
            let Some(end) = end else {
                return Err(format!("chunk at {pos:#x} of {size} bytes runs past the end of the stream (truncated?)"));
            };
            if size > 0 {
                chunks.push((offset, offset + size as u64, start as u64));
            }
            index.chunks += 1;
            pos = end;
        }
        // Both walk the whole index: once here, not on every read.
        index.ranges = FlatIndex::resolve(chunks);
        index.logical_len = index.ranges.last().map_or(0, |r| r.1);
        index.stored_len = index.ranges.iter().map(|&(s, e, _)| e - s).sum();
        Ok(index)
    }

    /// The ranges of the reassembled file, from the chunks in stream
    /// order: where chunks overlap, the later one wins.
    ///
    /// Near-linear however the chunks come (scanning the earlier ranges for
    /// every chunk took 35 s for 121,000 chunks): a stream whose chunks come
    /// in order without overlapping (what makedumpfile writes) is its own
    /// index; otherwise one sweep over the chunks' starts and ends, in
    /// order, keeps the chunks that cover the current point in a heap by
    /// stream position, and each piece between two consecutive boundaries
    /// goes to the latest of them. O(n log n).
    fn resolve(chunks: Vec<(u64, u64, u64)>) -> Vec<(u64, u64, u64)> {
        if chunks.windows(2).all(|w| w[0].1 <= w[1].0) {
            return chunks;
        }
        let mut by_start: Vec<usize> = (0..chunks.len()).collect();
        by_start.sort_unstable_by_key(|&i| chunks[i].0);
        let mut bounds: Vec<u64> = chunks.iter().flat_map(|&(s, e, _)| [s, e]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut heap = std::collections::BinaryHeap::new();
        let mut next = 0;
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        let mut last_winner = usize::MAX;
        for w in bounds.windows(2) {
            let (at, to) = (w[0], w[1]);
            while let Some(&i) = by_start.get(next).filter(|&&i| chunks[i].0 <= at) {
                heap.push(i); // the stream position: later chunks are larger
                next += 1;
            }
            while heap.peek().is_some_and(|&i| chunks[i].1 <= at) {
                heap.pop();
            }
            let Some(&i) = heap.peek() else {
                last_winner = usize::MAX;
                continue;
            };
            let (s, _, f) = chunks[i];
            match out.last_mut() {
                // The same chunk goes on: one range.
                Some(r) if last_winner == i && r.1 == at => r.1 = to,
                _ => out.push((at, to, f + (at - s))),
            }
            last_winner = i;
        }
        out
    }

    fn logical_len(&self) -> u64 {
        self.logical_len
    }

    /// Bytes of the reassembled file that the stream wrote (chunks never
    /// overlap in the index): at most the stream's own size.
    fn stored_len(&self) -> u64 {
        self.stored_len
    }

    fn read(&self, data: &[u8], off: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        let mut done = 0usize;
        // One search, then the ranges that follow in order: a page of a
        // stream cut into tiny chunks spans a thousand of them.
        let first = self
            .ranges
            .partition_point(|&(s, _, _)| s <= off)
            .saturating_sub(1);
        let mut ranges = self.ranges[first..].iter();
        while done < buf.len() {
            let at = off + done as u64;
            let hit = ranges.next().filter(|&&(s, e, _)| s <= at && e > at);
            let Some(&(s, e, f)) = hit else {
                return Err(format!(
                    "offset {at:#x} of the reassembled file was never written by the stream"
                ));
            };
            let n = ((e - at) as usize).min(buf.len() - done);
            let src = (f + (at - s)) as usize;
            buf[done..done + n].copy_from_slice(&data[src..src + n]);
            done += n;
        }
        Ok(())
    }

    /// Number of data chunks in the stream.
    pub(crate) fn chunks(&self) -> usize {
        self.chunks
    }
}

/// The compression a dump's pages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Pages stored as they were.
    None,
    /// zlib.
    Zlib,
    /// LZO1X.
    Lzo,
    /// Snappy (raw block format).
    Snappy,
    /// Zstandard.
    Zstd,
}

/// A kdump-compressed dump.
#[derive(Debug)]
pub struct KdumpFile {
    storage: Storage,
    /// `header_version` (1–6).
    pub header_version: i32,
    /// Page size.
    pub block_size: u32,
    /// Number of page frames the bitmaps describe.
    pub max_mapnr: u64,
    /// `dump_level` from the sub-header (31: zero, cache, private cache, user, free pages left out).
    pub dump_level: i32,
    /// `status` flags from the header.
    pub status: u32,
    /// `nr_cpus` from the header.
    pub nr_cpus: i32,
    /// `utsname.release` (empty in QEMU's dumps).
    pub release: String,
    /// `phys_base` from the sub-header: unreliable in QEMU's dumps.
    pub sub_phys_base: u64,
    /// Dumped pages in this file.
    pub dumped_pages: u64,
    /// Pages that are RAM but were left out.
    pub excluded_pages: u64,
    /// Whether this is one file of a `--split` set (`start_pfn..end_pfn`).
    pub split: Option<(u64, u64)>,
    flattened_chunks: Option<usize>,
    bitmap1: Vec<u8>,
    bitmap2: Vec<u8>,
    /// Number of dumped pages before each 512-pfn block of bitmap2.
    rank: Vec<u64>,
    desc_off: u64,
    notes: Notes,
    /// Why the sub-header's notes could not be read, if they could not.
    notes_problem: Option<String>,
    compressions: Mutex<u32>,
    cache: PageCache,
}

impl KdumpFile {
    /// Open a plain (`KDUMP   `) file.
    pub(crate) fn parse(path: &Path, file: Mapped) -> Result<KdumpFile> {
        KdumpFile::from_storage(path, Storage::Plain(file))
    }

    /// Open a flattened stream in place.
    pub(crate) fn parse_flattened(path: &Path, file: Mapped) -> Result<KdumpFile> {
        let index = FlatIndex::build(file.bytes())
            .map_err(|e| Error::bad_file(path, format!("flattened dump: {e}")))?;
        KdumpFile::from_storage(path, Storage::Flat { file, index })
    }

    fn from_storage(path: &Path, storage: Storage) -> Result<KdumpFile> {
        let bad = |what: String| Error::bad_file(path, format!("kdump-compressed: {what}"));
        let head = storage.read_vec(0, 464.min(storage.len())).map_err(&bad)?;
        if head.get(..8) != Some(b"KDUMP   ") {
            return Err(bad("no KDUMP signature".into()));
        }
        let header_version = le32(&head, 8).ok_or_else(|| bad("truncated header".into()))? as i32;
        // 64-bit layout (x86_64): status at 424; the 32-bit one has it at 412.
        let layout = [424usize, 412].into_iter().find(|&st| {
            let bs = le32(&head, st + 4).unwrap_or(0);
            bs.is_power_of_two() && (512..=1 << 20).contains(&bs)
        });
        let Some(st) = layout else {
            return Err(bad("block size is not a sane power of two".into()));
        };
        let g32 = |at: usize| le32(&head, at).ok_or_else(|| bad("truncated header".into()));
        let status = g32(st)?;
        let block_size = g32(st + 4)?;
        let sub_hdr_size = u64::from(g32(st + 8)?);
        let bitmap_blocks = u64::from(g32(st + 12)?);
        let max_mapnr32 = u64::from(g32(st + 16)?);
        let nr_cpus = g32(st + 36)? as i32;
        let release = String::from_utf8_lossy(&head[142..207])
            .trim_end_matches('\0')
            .to_owned();
        let bs = u64::from(block_size);

        let sub = storage
            .read_vec(bs, 104.min(storage.len().saturating_sub(bs)))
            .map_err(&bad)?;
        let s64 = |at: usize| le64(&sub, at);
        let sub_phys_base = s64(0).unwrap_or(0);
        let dump_level = le32(&sub, 8).unwrap_or(0) as i32;
        let split_flag = le32(&sub, 12).unwrap_or(0);
        let (mut start_pfn, mut end_pfn) = (s64(16).unwrap_or(0), s64(24).unwrap_or(0));
        let mut max_mapnr = max_mapnr32;
        if header_version >= 6 {
            start_pfn = s64(80).unwrap_or(start_pfn);
            end_pfn = s64(88).unwrap_or(end_pfn);
            max_mapnr = s64(96).unwrap_or(max_mapnr);
        }
        let bitmap_len = bitmap_blocks / 2 * bs;
        if bitmap_blocks == 0 || bitmap_len.saturating_mul(2) > storage.len() {
            return Err(bad(format!(
                "bitmaps of {bitmap_blocks} blocks do not fit in the file"
            )));
        }
        if max_mapnr.div_ceil(8) > bitmap_len {
            // Old single-bitmap diskdump: not supported.
            return Err(bad(format!(
                "{max_mapnr} page frames do not fit a bitmap of {bitmap_len} bytes"
            )));
        }
        let bitmap1_off = (1 + sub_hdr_size) * bs;
        let bitmap1 = storage.read_vec(bitmap1_off, bitmap_len).map_err(&bad)?;
        let bitmap2 = storage
            .read_vec(bitmap1_off + bitmap_len, bitmap_len)
            .map_err(&bad)?;
        let desc_off = (1 + sub_hdr_size + bitmap_blocks) * bs;

        let mut notes = Notes::default();
        let mut notes_problem = None;
        if header_version >= 4 {
            let (off, size) = (s64(48).unwrap_or(0), s64(56).unwrap_or(0));
            if size >= 1 << 24 {
                notes_problem = Some(format!(
                    "the sub-header's notes are {size} bytes: refused, no CPU registers"
                ));
            } else if size > 0 {
                match storage.read_vec(off, size) {
                    Ok(blob) => notes = Notes::parse(&blob),
                    Err(e) => {
                        notes_problem = Some(format!(
                            "the notes ({size} bytes at offset {off:#x}) are unreadable: {e}; \
                             no CPU registers"
                        ))
                    }
                }
            }
        }
        if notes.vmcoreinfo.is_none() && header_version >= 3 {
            let (off, size) = (s64(32).unwrap_or(0), s64(40).unwrap_or(0));
            if size > 0 && size < 1 << 20 {
                if let Ok(text) = storage.read_vec(off, size) {
                    notes.vmcoreinfo = Some(VmcoreInfo::parse(&text));
                }
            }
        }

        // An x86_64 kernel's pages, so kdump's blocks, are 4 KiB: another
        // block size puts the sub-header elsewhere, and then no notes are
        // found (which would be reported as "no VMCOREINFO").
        if block_size != 4096 && notes.vmcoreinfo.is_none() && notes.prstatus.is_empty() {
            return Err(bad(format!(
                "block size {block_size} is not the 4096-byte page of an x86_64 kernel, \
                 and no notes or VMCOREINFO are where it puts them (a damaged header?)"
            )));
        }

        // rank[i] = dumped pages in bitmap2 before pfn i*512 (within this file's range).
        let split = (split_flag != 0).then_some((start_pfn, end_pfn));
        let mut rank = Vec::with_capacity(bitmap2.len() / 64 + 1);
        let mut total = 0u64;
        for (i, block) in bitmap2.chunks(64).enumerate() {
            rank.push(total);
            match split {
                None => total += block.iter().map(|b| u64::from(b.count_ones())).sum::<u64>(),
                Some((s, e)) => {
                    let base = i as u64 * 512;
                    for (j, &byte) in block.iter().enumerate() {
                        for bit in 0..8 {
                            let pfn = base + j as u64 * 8 + bit;
                            if byte & (1 << bit) != 0 && (s..e).contains(&pfn) {
                                total += 1;
                            }
                        }
                    }
                }
            }
        }
        let excluded_pages = bitmap1
            .iter()
            .zip(&bitmap2)
            .map(|(&a, &b)| u64::from((a & !b).count_ones()))
            .sum();
        let flattened_chunks = match &storage {
            Storage::Flat { index, .. } => Some(index.chunks()),
            Storage::Plain(_) => None,
        };
        Ok(KdumpFile {
            storage,
            header_version,
            block_size,
            max_mapnr,
            dump_level,
            status,
            nr_cpus,
            release,
            sub_phys_base,
            dumped_pages: total,
            excluded_pages,
            split,
            flattened_chunks,
            bitmap1,
            bitmap2,
            rank,
            desc_off,
            notes,
            notes_problem,
            compressions: Mutex::new(0),
            cache: Mutex::new(vec![None; CACHE_SLOTS]),
        })
    }

    /// Why the notes the sub-header points at could not be read.
    pub fn notes_problem(&self) -> Option<&str> {
        self.notes_problem.as_deref()
    }

    /// The notes of the dump (from the sub-header).
    pub fn notes(&self) -> &Notes {
        &self.notes
    }

    /// Whether the dump was cut short (`DUMP_DH_COMPRESSED_INCOMPLETE`).
    pub fn incomplete(&self) -> bool {
        self.status & DUMP_DH_COMPRESSED_INCOMPLETE != 0
    }

    /// The number of chunks when read from a flattened stream.
    pub fn flattened_chunks(&self) -> Option<usize> {
        self.flattened_chunks
    }

    /// The compressions the header announces (QEMU sets exactly one).
    pub fn header_compression(&self) -> Compression {
        compression_of(self.status)
    }

    /// The compressions seen on pages read so far (bit set of header flags).
    pub fn seen_compressions(&self) -> Vec<Compression> {
        let seen = *self.compressions.lock().unwrap_or_else(|e| e.into_inner());
        [
            DUMP_DH_COMPRESSED_ZLIB,
            DUMP_DH_COMPRESSED_LZO,
            DUMP_DH_COMPRESSED_SNAPPY,
            DUMP_DH_COMPRESSED_ZSTD,
        ]
        .into_iter()
        .filter(|f| seen & f != 0)
        .map(compression_of)
        .collect()
    }

    /// Where page `pfn` is stored: (offset of its page descriptor, offset of
    /// its data, stored size, compression flags), or `None` if not dumped.
    pub fn page_location(&self, pfn: u64) -> Option<(u64, u64, u32, u32)> {
        let desc = self.desc_offset(pfn)?;
        let mut pd = [0u8; PAGE_DESC_LEN as usize];
        self.storage.read_at(desc, &mut pd).ok()?;
        Some((desc, le64(&pd, 0)?, le32(&pd, 8)?, le32(&pd, 12)?))
    }

    /// Offset of the page descriptor of a dumped page.
    fn desc_offset(&self, pfn: u64) -> Option<u64> {
        if !Self::bit(&self.bitmap2, pfn) || self.split.is_some_and(|(s, e)| !(s..e).contains(&pfn))
        {
            return None;
        }
        let block = (pfn / 512) as usize;
        let mut idx = self.rank.get(block).copied().unwrap_or(0);
        match self.split {
            // Whole bytes, then the bits of the last one below pfn.
            None => {
                let (from, to) = (block * 64, (pfn / 8) as usize);
                idx += self
                    .bitmap2
                    .get(from..to)?
                    .iter()
                    .map(|b| u64::from(b.count_ones()))
                    .sum::<u64>();
                idx += u64::from((self.bitmap2.get(to)? & ((1u8 << (pfn % 8)) - 1)).count_ones());
            }
            Some((s, e)) => {
                for p in (block as u64 * 512)..pfn {
                    if Self::bit(&self.bitmap2, p) && (s..e).contains(&p) {
                        idx += 1;
                    }
                }
            }
        }
        Some(self.desc_off + idx * PAGE_DESC_LEN)
    }

    fn bit(map: &[u8], pfn: u64) -> bool {
        map.get((pfn / 8) as usize)
            .is_some_and(|b| b & (1 << (pfn % 8)) != 0)
    }

    /// The decompressed page `pfn`.
    fn page(&self, pfn: u64) -> std::result::Result<std::sync::Arc<[u8]>, String> {
        let slot = (pfn % CACHE_SLOTS as u64) as usize;
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((p, data)) = &cache[slot] {
                if *p == pfn {
                    return Ok(data.clone());
                }
            }
        }
        let Some(desc) = self.desc_offset(pfn) else {
            return Err(if Self::bit(&self.bitmap1, pfn) {
                format!("excluded from the dump (dump level {})", self.dump_level)
            } else if pfn >= self.max_mapnr {
                "beyond the end of the dumped memory".to_owned()
            } else {
                "not in the dump (not RAM)".to_owned()
            });
        };
        let mut pd = [0u8; PAGE_DESC_LEN as usize];
        self.storage
            .read_at(desc, &mut pd)
            .map_err(|e| format!("page descriptor: {e}"))?;
        let (offset, size, flags) = (
            le64(&pd, 0).unwrap_or(0),
            le32(&pd, 8).unwrap_or(0),
            le32(&pd, 12).unwrap_or(0),
        );
        if offset == 0 {
            return Err("lost: the dump is incomplete".to_owned());
        }
        if size > self.block_size {
            return Err(format!(
                "page descriptor says {size} bytes for a {}-byte page",
                self.block_size
            ));
        }
        let mut raw = vec![0u8; size as usize];
        self.storage
            .read_at(offset, &mut raw)
            .map_err(|e| format!("page data: {e}"))?;
        let page = decompress(flags, &raw, self.block_size as usize)?;
        *self.compressions.lock().unwrap_or_else(|e| e.into_inner()) |= flags & 0x27;
        let page: std::sync::Arc<[u8]> = page.into();
        self.cache.lock().unwrap_or_else(|e| e.into_inner())[slot] = Some((pfn, page.clone()));
        Ok(page)
    }
}

fn compression_of(flags: u32) -> Compression {
    if flags & DUMP_DH_COMPRESSED_ZLIB != 0 {
        Compression::Zlib
    } else if flags & DUMP_DH_COMPRESSED_LZO != 0 {
        Compression::Lzo
    } else if flags & DUMP_DH_COMPRESSED_SNAPPY != 0 {
        Compression::Snappy
    } else if flags & DUMP_DH_COMPRESSED_ZSTD != 0 {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Decompress one page; the result must be exactly `len` bytes.
fn decompress(flags: u32, raw: &[u8], len: usize) -> std::result::Result<Vec<u8>, String> {
    let out = match compression_of(flags) {
        Compression::None => {
            if raw.len() != len {
                return Err(format!(
                    "uncompressed page of {} bytes, expected {len}",
                    raw.len()
                ));
            }
            return Ok(raw.to_vec());
        }
        Compression::Zlib => {
            let mut out = Vec::with_capacity(len);
            flate2::read::ZlibDecoder::new(raw)
                .take(len as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("zlib: {e}"))?;
            out
        }
        // kpeek's own checked decoder (lzokay-native's panicked on damaged
        // pages: found by the `dump_flattened` fuzz target).
        Compression::Lzo => super::lzo::decompress(raw, len)?,
        Compression::Snappy => {
            // The stream's header gives the output length, up to 4 GiB:
            // checked before snap allocates it.
            let n = snap::raw::decompress_len(raw).map_err(|e| format!("snappy: {e}"))?;
            if n != len {
                return Err(format!("snappy: a page of {n} bytes, expected {len}"));
            }
            snap::raw::Decoder::new()
                .decompress_vec(raw)
                .map_err(|e| format!("snappy: {e}"))?
        }
        Compression::Zstd => {
            let mut out = Vec::with_capacity(len);
            let dec =
                ruzstd::decoding::StreamingDecoder::new(raw).map_err(|e| format!("zstd: {e}"))?;
            dec.take(len as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            out
        }
    };
    if out.len() != len {
        return Err(format!(
            "page decompressed to {} bytes, expected {len}",
            out.len()
        ));
    }
    Ok(out)
}

impl MemorySource for KdumpFile {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        let bs = u64::from(self.block_size);
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.0.wrapping_add(done as u64);
            let (pfn, off) = (at / bs, (at % bs) as usize);
            let page = self
                .page(pfn)
                .map_err(|why| Error::fault("physical", at, buf.len() - done, why))?;
            let n = (bs as usize - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(off: i64, data: &[u8]) -> Vec<u8> {
        let mut v = off.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as i64).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn stream(chunks: &[Vec<u8>], end: bool) -> Vec<u8> {
        let mut v = b"makedumpfile\0\0\0\0".to_vec();
        v.extend_from_slice(&1i64.to_be_bytes());
        v.extend_from_slice(&1i64.to_be_bytes());
        v.resize(4096, 0);
        for c in chunks {
            v.extend_from_slice(c);
        }
        if end {
            v.extend_from_slice(&(-1i64).to_be_bytes());
            v.extend_from_slice(&(-1i64).to_be_bytes());
        }
        v
    }

    #[test]
    fn flattened_later_chunks_win() {
        let s = stream(
            &[chunk(0, b"aaaaaaaa"), chunk(2, b"bb"), chunk(6, b"cccc")],
            true,
        );
        let idx = FlatIndex::build(&s).expect("index");
        let mut buf = [0u8; 10];
        idx.read(&s, 0, &mut buf).expect("read");
        assert_eq!(&buf, b"aabbaacccc");
        assert_eq!(idx.logical_len(), 10);
        assert!(idx.read(&s, 8, &mut [0u8; 4]).is_err());
    }

    /// Many overlapping chunks in every order: the index reads back what
    /// writing them in turn into one buffer gives (`makedumpfile -R`).
    #[test]
    fn overlapping_chunks_read_back_as_written_in_order() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..50 {
            let mut want = vec![None::<u8>; 600];
            let mut chunks = Vec::new();
            for i in 0..(20 + round * 4) {
                let off = next(500) as usize;
                let len = 1 + next(if round % 2 == 0 { 8 } else { 90 }) as usize;
                let byte = (i % 251) as u8;
                chunks.push(chunk(off as i64, &vec![byte; len]));
                for w in &mut want[off..off + len] {
                    *w = Some(byte);
                }
            }
            let s = stream(&chunks, true);
            let idx = FlatIndex::build(&s).expect("index");
            let written: u64 = want.iter().filter(|w| w.is_some()).count() as u64;
            assert_eq!(idx.stored_len(), written, "round {round}");
            for (at, w) in want.iter().enumerate() {
                let mut b = [0u8];
                match (w, idx.read(&s, at as u64, &mut b)) {
                    (Some(v), Ok(())) => assert_eq!(b[0], *v, "round {round} byte {at}"),
                    (None, Err(_)) => {}
                    (w, r) => panic!("round {round} byte {at}: want {w:?}, got {r:?}"),
                }
            }
        }
    }

    #[test]
    fn truncated_flattened_streams_are_errors() {
        let s = stream(&[chunk(0, b"aaaaaaaa")], true);
        for cut in [0, 100, 4096, 4100, 4115, 4120, s.len() - 1] {
            assert!(FlatIndex::build(&s[..cut]).is_err(), "cut at {cut}");
        }
        let neg = stream(&[chunk(-5, b"x")], true);
        assert!(FlatIndex::build(&neg).is_err());
    }

    /// Found by the `dump_flattened` fuzz target: a chunk at a wild offset
    /// made the logical file huge, so bitmaps of 2^51 bytes passed the
    /// "more than the whole file" check and were allocated before reading.
    #[test]
    fn a_chunk_at_a_wild_offset_does_not_size_an_allocation() {
        let mut head = vec![0u8; 464];
        head[..8].copy_from_slice(b"KDUMP   ");
        head[8..12].copy_from_slice(&6i32.to_le_bytes());
        // block size 1 MiB, sub-header 1 block, 0xffff_fffe bitmap blocks.
        head[428..432].copy_from_slice(&(1u32 << 20).to_le_bytes());
        head[432..436].copy_from_slice(&1u32.to_le_bytes());
        head[436..440].copy_from_slice(&0xffff_fffeu32.to_le_bytes());
        let sub = [0u8; 104];
        let s = stream(
            &[chunk(0, &head), chunk(1 << 20, &sub), chunk(1 << 60, b"x")],
            true,
        );
        let idx = FlatIndex::build(&s).expect("index");
        assert_eq!(idx.logical_len(), (1 << 60) + 1);
        assert_eq!(idx.stored_len(), 464 + 104 + 1);
        match crate::dump::Dump::from_bytes(Path::new("wild"), s) {
            Ok(_) => panic!("a dump with bitmaps of 2^51 bytes opened"),
            Err(e) => assert!(e.to_string().contains("more than the whole file"), "{e}"),
        }
    }

    #[test]
    fn pages_must_decompress_to_a_whole_page() {
        assert!(decompress(0, &[1, 2, 3], 4096).is_err());
        assert!(decompress(DUMP_DH_COMPRESSED_ZLIB, b"not zlib", 4096).is_err());
        assert!(decompress(DUMP_DH_COMPRESSED_LZO, b"\x11\x00\x00", 4096).is_err());
        // Back-references before the start of the page: these panicked in
        // lzokay-native, the decoder used before (the `dump_flattened` fuzz
        // target found one); see also `dump::lzo::tests`.
        for raw in [
            &b"\x01abcd\x00\x00"[..],
            b"\x01abcd\x04\xff",
            b"\x00\x00\x00\x00\x40\xff",
            b"\x02ab\x20\xff\xff",
        ] {
            assert!(
                decompress(DUMP_DH_COMPRESSED_LZO, raw, 4096).is_err(),
                "{raw:?}"
            );
        }
        assert!(decompress(DUMP_DH_COMPRESSED_SNAPPY, b"\xff\xff", 4096).is_err());
        // A snappy header announcing 4 GiB - 1 is refused before allocating.
        let big = b"\xff\xff\xff\xff\x0f\x00";
        assert_eq!(snap::raw::decompress_len(big).ok(), Some(u32::MAX as usize));
        assert!(decompress(DUMP_DH_COMPRESSED_SNAPPY, big, 4096).is_err());
        assert!(decompress(DUMP_DH_COMPRESSED_ZSTD, b"junk", 4096).is_err());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &[7u8; 4096]).expect("compress");
        let z = z.finish().expect("compress");
        assert_eq!(
            decompress(DUMP_DH_COMPRESSED_ZLIB, &z, 4096).expect("zlib"),
            vec![7u8; 4096]
        );
        assert!(decompress(DUMP_DH_COMPRESSED_ZLIB, &z, 2048).is_err());
    }
}
