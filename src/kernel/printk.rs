//! The kernel log: the lockless printk ring buffer (`prb`, Linux 5.10+).
//!
//! The ring has two parts. The descriptor ring holds `count` descriptors
//! (`struct prb_desc`: a state word and where the text lies) and as many
//! `struct printk_info` (sequence number, timestamp, level, caller, text
//! length); the text data ring holds the texts, each block starting with
//! the id of the descriptor that owns it. Records live from `tail_id` to
//! `head_id`; a descriptor's state word carries its id and its state
//! (reserved, committed, finalized, reusable) in the top two bits.
//!
//! Everything is read in a few large reads, then decoded here without
//! touching memory again ([`decode`]), so a damaged ring is just bytes: a
//! descriptor that does not hold the id it should, a text block that
//! belongs to another record, a sequence number out of place, each becomes
//! a [`Gap`] in the listing and the walk goes on.

use serde::Serialize;

use super::program::Program;
use super::task::Warning;
use crate::addr::VirtAddr;
use crate::debuginfo::Member;
use crate::{Error, Result};

/// States in the top two bits of `prb_desc.state_var`
/// (kernel/printk/printk_ringbuffer.h).
const STATE_SHIFT: u32 = 62;
const ID_MASK: u64 = !(3u64 << STATE_SHIFT);
const DESC_RESERVED: u64 = 0;
const DESC_COMMITTED: u64 = 1;
const DESC_FINALIZED: u64 = 2;
const DESC_REUSABLE: u64 = 3;
/// A record without text (`NO_LPOS` in both ends of its block).
const NO_LPOS: u64 = 0x3;

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Sequence number (`info->seq`).
    pub seq: u64,
    /// Nanoseconds since boot (`local_clock()` at the printk).
    pub ts_nsec: u64,
    /// Log level, 0 (emerg) to 7 (debug).
    pub level: u8,
    /// Syslog facility (0: kernel).
    pub facility: u8,
    /// `LOG_NEWLINE` (2), `LOG_CONT` (8).
    pub flags: u8,
    /// Who printed: `T<pid>` for a task, `C<cpu>` outside task context.
    pub caller: String,
    /// The text; a record may hold several lines.
    pub text: String,
    /// The descriptor is committed but not finalized (a line still open
    /// for continuations).
    pub open: bool,
    /// The text block was shorter than the record's length: `text` is what there was.
    pub truncated: bool,
}

/// Records that could not be read between two that could.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Descriptors (or sequence numbers) lost.
    pub records: u64,
    /// Why the first of them was unreadable.
    pub reason: String,
}

/// A line of the listing: a record, or a gap in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    /// A record.
    Record(Record),
    /// Records lost.
    Gap(Gap),
}

/// The log, oldest record first.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Log {
    /// Records and gaps.
    pub entries: Vec<Entry>,
    /// What was wrong with the ring as a whole.
    pub warnings: Vec<Warning>,
}

impl Log {
    /// The records, without the gaps.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Record(r) => Some(r),
            Entry::Gap(_) => None,
        })
    }
}

/// Where the fields are, from the vmlinux's DWARF.
#[derive(Clone, Debug)]
pub struct PrbOffsets {
    /// `sizeof(struct prb_desc)`.
    pub desc_size: u64,
    /// `prb_desc.state_var`.
    pub state_var: u64,
    /// `prb_desc.text_blk_lpos.begin`.
    pub begin: u64,
    /// `prb_desc.text_blk_lpos.next`.
    pub next: u64,
    /// `sizeof(struct printk_info)`.
    pub info_size: u64,
    /// `printk_info.seq`.
    pub seq: u64,
    /// `printk_info.ts_nsec`.
    pub ts_nsec: u64,
    /// `printk_info.text_len` (u16).
    pub text_len: u64,
    /// `printk_info.facility` (u8).
    pub facility: u64,
    /// `printk_info.flags` (a bitfield).
    pub flags: Member,
    /// `printk_info.level` (a bitfield).
    pub level: Member,
    /// `printk_info.caller_id` (u32).
    pub caller_id: u64,
}

impl PrbOffsets {
    /// Read the layout from the debug info.
    pub fn from_debug(prog: &Program) -> Result<PrbOffsets> {
        let d = &prog.debug;
        Ok(PrbOffsets {
            desc_size: d.type_size("prb_desc")?,
            state_var: d.member("prb_desc", "state_var")?.offset,
            begin: d.member("prb_desc", "text_blk_lpos.begin")?.offset,
            next: d.member("prb_desc", "text_blk_lpos.next")?.offset,
            info_size: d.type_size("printk_info")?,
            seq: d.member("printk_info", "seq")?.offset,
            ts_nsec: d.member("printk_info", "ts_nsec")?.offset,
            text_len: d.member("printk_info", "text_len")?.offset,
            facility: d.member("printk_info", "facility")?.offset,
            flags: d.member("printk_info", "flags")?,
            level: d.member("printk_info", "level")?,
            caller_id: d.member("printk_info", "caller_id")?.offset,
        })
    }
}

/// The ring's bytes, as read from memory.
#[derive(Clone, Debug, Default)]
pub struct RawRing {
    /// `desc_ring.count_bits`.
    pub count_bits: u32,
    /// `desc_ring.head_id`.
    pub head_id: u64,
    /// `desc_ring.tail_id`.
    pub tail_id: u64,
    /// The descriptor array (`count` descriptors).
    pub descs: Vec<u8>,
    /// The info array (`count` infos).
    pub infos: Vec<u8>,
    /// `text_data_ring.size_bits`.
    pub size_bits: u32,
    /// The text data ring.
    pub data: Vec<u8>,
    /// Pages of `descs`, `infos` or `data` that could not be read (byte
    /// ranges, per array): their records become gaps.
    pub holes: Vec<(Part, std::ops::Range<usize>)>,
    /// Parts of the text ring left unread: outside `tail_lpos..head_lpos`,
    /// they hold no valid text.
    pub stale: Vec<std::ops::Range<usize>>,
}

/// Which array of the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The descriptors.
    Descs,
    /// The infos.
    Infos,
    /// The text data.
    Data,
}

impl RawRing {
    fn hole(&self, part: Part, range: std::ops::Range<usize>) -> bool {
        self.holes
            .iter()
            .any(|(p, h)| *p == part && h.start < range.end && range.start < h.end)
    }
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn uint_at(b: &[u8], off: usize, size: usize) -> Option<u64> {
    let bytes = b.get(off..off + size)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
    )
}

fn bits(b: &[u8], base: usize, m: &Member) -> Option<u64> {
    let v = uint_at(b, base + m.offset as usize, m.size.min(8) as usize)?;
    Some(match (m.bit_offset, m.bit_size) {
        (Some(o), Some(n)) if n < 64 => v.checked_shr(o).unwrap_or(0) & ((1u64 << n) - 1),
        _ => v,
    })
}

/// Why a descriptor gave no record.
enum Skip {
    /// Being written (reserved), or an already recycled one at the tail: normal.
    Quiet,
    /// Damaged or inconsistent.
    Bad(String),
}

/// Decode the records from `tail_id` to `head_id`.
pub fn decode(layout: &PrbOffsets, raw: &RawRing) -> Log {
    let mut log = Log::default();
    if raw.count_bits == 0 || raw.count_bits > 25 || raw.size_bits < 4 || raw.size_bits > 30 {
        log.warnings.push(Warning {
            code: "bad_printk_ring",
            message: format!(
                "the printk ring is implausible: 2^{} descriptors, 2^{} bytes of text",
                raw.count_bits, raw.size_bits
            ),
            address: None,
        });
        return log;
    }
    let count = 1u64 << raw.count_bits;
    let mut id = raw.tail_id & ID_MASK;
    let head = raw.head_id & ID_MASK;
    // Descriptors that gave no record since the last one that did.
    let mut pending: Vec<Skip> = Vec::new();
    let mut expected_seq: Option<u64> = None;
    let mut reached_head = false;
    for _ in 0..=count {
        match record(layout, raw, id, head) {
            Ok(rec) => {
                flush_gap(&mut log, &mut pending, expected_seq, rec.seq);
                expected_seq = Some(rec.seq.wrapping_add(1));
                log.entries.push(Entry::Record(rec));
            }
            Err(skip) => pending.push(skip),
        }
        if id == head {
            reached_head = true;
            break;
        }
        id = id.wrapping_add(1) & ID_MASK;
    }
    // Records being written at the head are no loss; anything else is.
    let bad: Vec<&String> = pending
        .iter()
        .filter_map(|s| match s {
            Skip::Bad(why) => Some(why),
            Skip::Quiet => None,
        })
        .collect();
    if let Some(first) = bad.first() {
        log.entries.push(Entry::Gap(Gap {
            records: bad.len() as u64,
            reason: (*first).clone(),
        }));
    }
    if !reached_head {
        log.warnings.push(Warning {
            code: "bad_printk_ring",
            message: format!(
                "the printk ring's head id {head:#x} is not within {count} descriptors of its tail id {:#x}",
                raw.tail_id & ID_MASK
            ),
            address: None,
        });
    }
    log
}

/// Turn the descriptors skipped before a good record (sequence `seq`) into a gap.
fn flush_gap(log: &mut Log, pending: &mut Vec<Skip>, expected: Option<u64>, seq: u64) {
    let first_bad = pending.iter().find_map(|s| match s {
        Skip::Bad(why) => Some(why.clone()),
        Skip::Quiet => None,
    });
    let skipped_bad = pending.iter().filter(|s| matches!(s, Skip::Bad(_))).count() as u64;
    // Before the first record, recycled descriptors at the tail are no loss.
    let jump = expected.map_or(0, |e| seq.wrapping_sub(e));
    let lost = if expected.is_some() && jump < 1 << 40 {
        jump.max(skipped_bad)
    } else {
        skipped_bad
    };
    if lost > 0 || first_bad.is_some() {
        let reason = first_bad.unwrap_or_else(|| {
            format!(
                "sequence numbers jump from {} to {seq}",
                expected.unwrap_or(0).wrapping_sub(1)
            )
        });
        log.entries.push(Entry::Gap(Gap {
            records: lost.max(1),
            reason,
        }));
    }
    pending.clear();
}

/// The record descriptor `id` holds, if it holds a readable one.
fn record(l: &PrbOffsets, raw: &RawRing, id: u64, head: u64) -> std::result::Result<Record, Skip> {
    let count = 1u64 << raw.count_bits;
    let index = (id & (count - 1)) as usize;
    let d = index * l.desc_size as usize;
    if raw.hole(Part::Descs, d..d + l.desc_size as usize) {
        return Err(Skip::Bad(format!("descriptor {index} is not in the dump")));
    }
    let sv = u64_at(&raw.descs, d + l.state_var as usize)
        .ok_or_else(|| Skip::Bad(format!("descriptor {index} is outside the ring")))?;
    let state = sv >> STATE_SHIFT;
    let holds = sv & ID_MASK;
    if holds != id {
        // A recycled descriptor at the tail, or the head being reserved, is
        // normal; anything else is damage.
        return Err(Skip::Bad(format!(
            "descriptor {index} holds id {holds:#x}, not {id:#x}"
        )));
    }
    match state {
        DESC_RESERVED if id == head => return Err(Skip::Quiet),
        DESC_RESERVED => {
            return Err(Skip::Bad(format!(
                "descriptor {index} (id {id:#x}) is still reserved"
            )))
        }
        DESC_REUSABLE => return Err(Skip::Quiet),
        DESC_COMMITTED | DESC_FINALIZED => {}
        _ => unreachable!("two bits"),
    }
    let i = index * l.info_size as usize;
    if raw.hole(Part::Infos, i..i + l.info_size as usize) {
        return Err(Skip::Bad(format!(
            "the info of descriptor {index} is not in the dump"
        )));
    }
    let info = &raw.infos;
    let field = |off: u64, size: usize| {
        uint_at(info, i + off as usize, size)
            .ok_or_else(|| Skip::Bad(format!("info {index} is outside the ring")))
    };
    let seq = field(l.seq, 8)?;
    if seq & (count - 1) != index as u64 {
        return Err(Skip::Bad(format!(
            "descriptor {index} (id {id:#x}) has sequence number {seq}, which belongs in descriptor {}",
            seq & (count - 1)
        )));
    }
    let ts_nsec = field(l.ts_nsec, 8)?;
    let text_len = field(l.text_len, 2)? as usize;
    let facility = field(l.facility, 1)? as u8;
    let flags = bits(info, i, &l.flags).unwrap_or(0) as u8;
    let level = bits(info, i, &l.level).unwrap_or(0) as u8;
    let caller_id = field(l.caller_id, 4)? as u32;
    let begin = u64_at(&raw.descs, d + l.begin as usize).unwrap_or(1);
    let next = u64_at(&raw.descs, d + l.next as usize).unwrap_or(1);
    let (text, truncated) = text(raw, id, index, begin, next, text_len)?;
    let caller = if caller_id & 0x8000_0000 != 0 {
        format!("C{}", caller_id & !0x8000_0000)
    } else {
        format!("T{caller_id}")
    };
    Ok(Record {
        seq,
        ts_nsec,
        level,
        facility,
        flags,
        caller,
        text,
        open: state == DESC_COMMITTED,
        truncated,
    })
}

/// The text of a record: `get_data()` and `copy_data()` of
/// kernel/printk/printk_ringbuffer.c, with every check turned into a reason.
fn text(
    raw: &RawRing,
    id: u64,
    index: usize,
    begin: u64,
    next: u64,
    text_len: usize,
) -> std::result::Result<(String, bool), Skip> {
    let size = 1u64 << raw.size_bits;
    let wraps = |lpos: u64| lpos >> raw.size_bits;
    let at = |lpos: u64| (lpos & (size - 1)) as usize;
    if begin & 1 == 1 && next & 1 == 1 {
        if begin == NO_LPOS && next == NO_LPOS {
            return Ok((String::new(), false));
        }
        return Err(Skip::Bad(format!(
            "record {index} (id {id:#x}) has no text: it could not be stored"
        )));
    }
    let (start, data_size) = if wraps(begin) == wraps(next) && begin < next {
        (at(begin), (next - begin) as usize)
    } else if wraps(begin.wrapping_add(size)) == wraps(next) {
        (0, at(next))
    } else {
        return Err(Skip::Bad(format!(
            "record {index} (id {id:#x}) has an impossible text block {begin:#x}..{next:#x}"
        )));
    };
    if !begin.is_multiple_of(8)
        || !next.is_multiple_of(8)
        || data_size < 8
        || start + data_size > raw.data.len()
    {
        return Err(Skip::Bad(format!(
            "record {index} (id {id:#x}) has a misaligned or oversized text block {begin:#x}..{next:#x}"
        )));
    }
    if raw.hole(Part::Data, start..start + data_size) {
        return Err(Skip::Bad(format!(
            "the text of record {index} (id {id:#x}) is not in the dump"
        )));
    }
    if raw
        .stale
        .iter()
        .any(|h| h.start < start + data_size && start < h.end)
    {
        return Err(Skip::Bad(format!(
            "the text of record {index} (id {id:#x}) lies outside the text ring's valid part"
        )));
    }
    let block_id = u64_at(&raw.data, start).unwrap_or(0);
    if block_id != id {
        return Err(Skip::Bad(format!(
            "the text block of record {index} belongs to id {block_id:#x}, not {id:#x}"
        )));
    }
    let avail = data_size - 8;
    let len = text_len.min(avail);
    let bytes = &raw.data[start + 8..start + 8 + len];
    Ok((
        String::from_utf8_lossy(bytes).into_owned(),
        text_len > avail,
    ))
}

/// Read the kernel log.
pub fn read_log(prog: &Program) -> Result<Log> {
    let d = &prog.debug;
    if d.find_type("printk_ringbuffer").is_err() {
        if d.find_type("printk_log").is_ok() {
            return read_old_log(prog);
        }
        return Err(Error::Unsupported(
            "this kernel has neither the lockless printk ring (struct printk_ringbuffer, 5.10+) \
             nor the log buffer of struct printk_log (3.5 to 5.9)"
                .into(),
        ));
    }
    let layout = PrbOffsets::from_debug(prog)?;
    let prb = match prog.symbol("prb") {
        Ok(p) => VirtAddr(prog.read_u64(p)?),
        Err(_) => prog.symbol("printk_rb_static")?,
    };
    let m = |path: &str| d.member("printk_ringbuffer", path).map(|m| m.offset);
    let count_bits = prog.read_u32(VirtAddr(prb.0 + m("desc_ring.count_bits")?))?;
    let descs = prog.read_u64(VirtAddr(prb.0 + m("desc_ring.descs")?))?;
    let infos = prog.read_u64(VirtAddr(prb.0 + m("desc_ring.infos")?))?;
    let head_id = prog.read_u64(VirtAddr(prb.0 + m("desc_ring.head_id")?))?;
    let tail_id = prog.read_u64(VirtAddr(prb.0 + m("desc_ring.tail_id")?))?;
    let size_bits = prog.read_u32(VirtAddr(prb.0 + m("text_data_ring.size_bits")?))?;
    let data = prog.read_u64(VirtAddr(prb.0 + m("text_data_ring.data")?))?;
    if count_bits == 0 || count_bits > 25 || !(4..=30).contains(&size_bits) {
        return Err(Error::BadFile {
            path: "printk ring buffer".into(),
            what: format!(
                "implausible ring at {prb}: 2^{count_bits} descriptors, 2^{size_bits} bytes of text"
            ),
        });
    }
    let count = 1usize << count_bits;
    let mut raw = RawRing {
        count_bits,
        head_id,
        tail_id,
        size_bits,
        ..RawRing::default()
    };
    let mut holes = Vec::new();
    // Only the descriptors from the tail to the head (all of them once the
    // ring has wrapped): a young log is a small part of the arrays.
    let used = ((head_id.wrapping_sub(tail_id) & ID_MASK) as usize).saturating_add(1);
    let first = (tail_id & (count as u64 - 1)) as usize;
    let spans: Vec<(usize, usize)> = if used >= count {
        vec![(0, count)]
    } else if first + used <= count {
        vec![(first, first + used)]
    } else {
        vec![(first, count), (0, first + used - count)]
    };
    for (part, base, size) in [
        (Part::Descs, descs, layout.desc_size as usize),
        (Part::Infos, infos, layout.info_size as usize),
    ] {
        let mut array = vec![0u8; count * size];
        for &(from, to) in &spans {
            let bytes = read_lenient(
                prog,
                base + (from * size) as u64,
                (to - from) * size,
                (part, from * size),
                &mut holes,
            );
            array[from * size..to * size].copy_from_slice(&bytes);
        }
        match part {
            Part::Descs => raw.descs = array,
            _ => raw.infos = array,
        }
    }
    // The text between the data ring's tail and head (all of it if those
    // make no sense).
    let size = 1usize << size_bits;
    let lpos = |path: &str| -> Result<u64> { prog.read_u64(VirtAddr(prb.0 + m(path)?)) };
    let (tail_lpos, head_lpos) = (
        lpos("text_data_ring.tail_lpos")?,
        lpos("text_data_ring.head_lpos")?,
    );
    let used = head_lpos.wrapping_sub(tail_lpos) as usize;
    let first = (tail_lpos as usize) & (size - 1);
    let spans: Vec<(usize, usize)> = if used >= size {
        vec![(0, size)]
    } else if first + used <= size {
        vec![(first, first + used)]
    } else {
        vec![(first, size), (0, first + used - size)]
    };
    raw.data = vec![0u8; size];
    let mut covered = 0;
    for &(from, to) in &spans {
        let bytes = read_lenient(
            prog,
            data + from as u64,
            to - from,
            (Part::Data, from),
            &mut holes,
        );
        raw.data[from..to].copy_from_slice(&bytes);
        covered += to - from;
    }
    if covered < size {
        let mut sorted = spans.clone();
        sorted.sort_unstable();
        let mut at = 0;
        for (from, to) in sorted {
            if from > at {
                raw.stale.push(at..from);
            }
            at = to;
        }
        if at < size {
            raw.stale.push(at..size);
        }
    }
    raw.holes = holes;
    let mut log = decode(&layout, &raw);
    if !raw.holes.is_empty() {
        let bytes: usize = raw.holes.iter().map(|(_, r)| r.len()).sum();
        log.warnings.push(Warning {
            code: "unreadable_printk_ring",
            message: format!("{bytes} bytes of the printk ring could not be read"),
            address: Some(prb),
        });
    }
    Ok(log)
}

/// Where the fields of `struct printk_log` are (Linux 3.5 to 5.9).
#[derive(Clone, Debug)]
pub struct OldLayout {
    /// `sizeof(struct printk_log)`.
    pub header: u64,
    /// `ts_nsec` (u64).
    pub ts_nsec: u64,
    /// `len` (u16): the whole record, header, text, dict and padding.
    pub len: u64,
    /// `text_len` (u16).
    pub text_len: u64,
    /// `facility` (u8).
    pub facility: u64,
    /// `flags` (bitfield).
    pub flags: Member,
    /// `level` (bitfield).
    pub level: Member,
    /// `caller_id` (u32), with `CONFIG_PRINTK_CALLER` (5.1+).
    pub caller_id: Option<u64>,
}

/// Decode the records of the old log buffer from `first_idx` to
/// `next_idx` (`log_from_idx()`/`log_next()` of kernel/printk/printk.c: a
/// record of length 0 sends the reader back to the start of the buffer).
pub fn decode_old(l: &OldLayout, buf: &[u8], first_idx: u64, next_idx: u64, first_seq: u64) -> Log {
    let mut log = Log::default();
    let mut idx = first_idx as usize;
    let mut seq = first_seq;
    let header = l.header as usize;
    let mut wrapped = false;
    // Each record is at least a header long: this bounds the walk.
    for _ in 0..=buf.len() / header.max(1) + 1 {
        if idx as u64 == next_idx {
            return log;
        }
        let field = |off: u64, size: usize| uint_at(buf, idx + off as usize, size);
        let Some(len) = field(l.len, 2) else {
            break;
        };
        if len == 0 {
            if wrapped || idx == 0 {
                break;
            }
            wrapped = true;
            idx = 0;
            continue;
        }
        let len = len as usize;
        let text_len = field(l.text_len, 2).unwrap_or(u64::MAX) as usize;
        if len < header || idx + len > buf.len() || text_len > len - header {
            break;
        }
        let caller = l
            .caller_id
            .and_then(|c| field(c, 4))
            .map_or(String::new(), |id| {
                if id & 0x8000_0000 != 0 {
                    format!("C{}", id & 0x7fff_ffff)
                } else {
                    format!("T{id}")
                }
            });
        log.entries.push(Entry::Record(Record {
            seq,
            ts_nsec: field(l.ts_nsec, 8).unwrap_or(0),
            level: bits(buf, idx, &l.level).unwrap_or(0) as u8,
            facility: field(l.facility, 1).unwrap_or(0) as u8,
            flags: bits(buf, idx, &l.flags).unwrap_or(0) as u8,
            caller,
            text: String::from_utf8_lossy(&buf[idx + header..idx + header + text_len]).into_owned(),
            open: false,
            truncated: false,
        }));
        seq += 1;
        idx += len;
    }
    // A record whose length makes no sense: the rest cannot be found.
    log.entries.push(Entry::Gap(Gap {
        records: 1,
        reason: format!(
            "the record at offset {idx} of the log buffer is damaged; the log after it is lost"
        ),
    }));
    log
}

/// The log buffer of kernels before 5.10 (`log_buf`, `struct printk_log`).
fn read_old_log(prog: &Program) -> Result<Log> {
    let d = &prog.debug;
    let m = |name: &str| d.member("printk_log", name);
    let l = OldLayout {
        header: d.type_size("printk_log")?,
        ts_nsec: m("ts_nsec")?.offset,
        len: m("len")?.offset,
        text_len: m("text_len")?.offset,
        facility: m("facility")?.offset,
        flags: m("flags")?,
        level: m("level")?,
        caller_id: m("caller_id").ok().map(|c| c.offset),
    };
    let buf = prog.read_u64(prog.symbol("log_buf")?)?;
    let len = prog.read_u32(prog.symbol("log_buf_len")?)? as usize;
    if !(4096..=1 << 30).contains(&len) {
        return Err(Error::Corrupt(format!(
            "implausible log_buf_len {len} (the printk log buffer)"
        )));
    }
    let first_idx = prog.read_u32(prog.symbol("log_first_idx")?)?;
    let next_idx = prog.read_u32(prog.symbol("log_next_idx")?)?;
    let first_seq = prog.read_u64(prog.symbol("log_first_seq")?)?;
    let bytes = prog.read_vec(VirtAddr(buf), len)?;
    Ok(decode_old(
        &l,
        &bytes,
        u64::from(first_idx),
        u64::from(next_idx),
        first_seq,
    ))
}

/// Read part of an array in one go, or page by page where that fails (the
/// pages that fail become zeros, and holes at `origin` + their offset).
fn read_lenient(
    prog: &Program,
    addr: u64,
    len: usize,
    (part, origin): (Part, usize),
    holes: &mut Vec<(Part, std::ops::Range<usize>)>,
) -> Vec<u8> {
    if let Ok(v) = prog.read_vec(VirtAddr(addr), len) {
        return v;
    }
    let mut v = vec![0u8; len];
    let mut off = 0;
    let mut failed = 0;
    while off < len {
        // A damaged pointer: do not knock on a million missing pages.
        if failed >= 64 {
            holes.push((part, origin + off..origin + len));
            break;
        }
        let page_end = ((addr + off as u64) | 0xfff) + 1;
        let end = len.min(off + (page_end - (addr + off as u64)) as usize);
        if prog
            .read(VirtAddr(addr + off as u64), &mut v[off..end])
            .is_err()
        {
            holes.push((part, origin + off..origin + end));
            failed += 1;
        }
        off = end;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(offset: u64, size: u64, bit: Option<(u32, u32)>) -> Member {
        Member {
            offset,
            size,
            bit_offset: bit.map(|b| b.0),
            bit_size: bit.map(|b| b.1),
            type_name: String::new(),
            type_id: None,
        }
    }

    /// The x86_64 layout of Linux 6.x (made up here only for the synthetic rings).
    fn layout() -> PrbOffsets {
        PrbOffsets {
            desc_size: 24,
            state_var: 0,
            begin: 8,
            next: 16,
            info_size: 32,
            seq: 0,
            ts_nsec: 8,
            text_len: 16,
            facility: 18,
            flags: member(19, 1, Some((0, 5))),
            level: member(19, 1, Some((5, 3))),
            caller_id: 20,
        }
    }

    /// A ring of 8 descriptors and 256 bytes of text holding `texts`,
    /// the first with id `first_id` and sequence 0.
    fn ring(texts: &[&str], first_id: u64) -> RawRing {
        let mut raw = RawRing {
            count_bits: 3,
            size_bits: 8,
            descs: vec![0; 8 * 24],
            infos: vec![0; 8 * 32],
            data: vec![0; 256],
            ..RawRing::default()
        };
        let mut lpos = 0u64;
        assert_eq!(first_id % 8, 0, "sequence 0 sits in descriptor 0");
        for (n, t) in texts.iter().enumerate() {
            let id = first_id + n as u64;
            let index = (id & 7) as usize;
            let d = index * 24;
            raw.descs[d..d + 8].copy_from_slice(&(id | DESC_FINALIZED << 62).to_le_bytes());
            let size = 8 + t.len().div_ceil(8) as u64 * 8;
            // A block that would cross the end starts again at 0.
            let (begin, start) = if (lpos & 255) + size > 256 {
                let wrapped = (lpos | 255) + 1;
                (lpos, wrapped)
            } else {
                (lpos, lpos)
            };
            let at = (start & 255) as usize;
            raw.data[at..at + 8].copy_from_slice(&id.to_le_bytes());
            raw.data[at + 8..at + 8 + t.len()].copy_from_slice(t.as_bytes());
            lpos = start + size;
            raw.descs[d + 8..d + 16].copy_from_slice(&begin.to_le_bytes());
            raw.descs[d + 16..d + 24].copy_from_slice(&lpos.to_le_bytes());
            let i = index * 32;
            let seq = id - first_id;
            raw.infos[i..i + 8].copy_from_slice(&seq.to_le_bytes());
            raw.infos[i + 8..i + 16].copy_from_slice(&(1_000_000 * id).to_le_bytes());
            raw.infos[i + 16..i + 18].copy_from_slice(&(t.len() as u16).to_le_bytes());
            raw.infos[i + 19] = 6 << 5 | 2;
            raw.infos[i + 20..i + 24].copy_from_slice(&(id as u32).to_le_bytes());
        }
        raw.tail_id = first_id;
        raw.head_id = first_id + texts.len() as u64 - 1;
        raw
    }

    fn texts(log: &Log) -> Vec<String> {
        log.entries
            .iter()
            .map(|e| match e {
                Entry::Record(r) => r.text.clone(),
                Entry::Gap(g) => format!("<gap {}>", g.records),
            })
            .collect()
    }

    #[test]
    fn reads_records_in_order_across_the_end_of_the_text_ring() {
        let words: Vec<String> = (0..7)
            .map(|i| format!("line {i} {}", "x".repeat(20)))
            .collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut raw = ring(&refs, 8);
        // The seventh block wrapped over the first: the kernel moved the
        // tail past it.
        raw.tail_id = 9;
        let log = decode(&layout(), &raw);
        assert_eq!(texts(&log), words[1..]);
        let last = u64_at(&raw.descs, 6 * 24 + 8).expect("begin");
        assert_eq!(last >> 8, 0, "the last block begins in the first wrap");
        assert!(log.warnings.is_empty());
        let r = log.records().next().expect("record");
        assert_eq!((r.level, r.flags, r.caller.as_str()), (6, 2, "T9"));
    }

    #[test]
    fn a_descriptor_with_the_wrong_id_becomes_a_gap_and_the_rest_is_read() {
        let mut raw = ring(&["one", "two", "three", "four"], 8);
        // Descriptor of id 9 (index 1) now claims id 17.
        raw.descs[24..32].copy_from_slice(&(17u64 | DESC_FINALIZED << 62).to_le_bytes());
        let log = decode(&layout(), &raw);
        assert_eq!(texts(&log), ["one", "<gap 1>", "three", "four"]);
    }

    #[test]
    fn a_text_block_of_another_record_and_a_bad_sequence_are_gaps() {
        let mut raw = ring(&["one", "two", "three", "four"], 8);
        // The text block of "two" claims another owner.
        let begin = u64_at(&raw.descs, 24 + 8).expect("begin") as usize;
        raw.data[begin..begin + 8].copy_from_slice(&99u64.to_le_bytes());
        // The info of "four" (index 3) has a sequence number of index 5.
        raw.infos[3 * 32..3 * 32 + 8].copy_from_slice(&5u64.to_le_bytes());
        let log = decode(&layout(), &raw);
        assert_eq!(texts(&log), ["one", "<gap 1>", "three", "<gap 1>"]);
    }

    #[test]
    fn garbage_never_panics_or_loops() {
        let l = layout();
        for seed in 0u64..200 {
            let mut raw = ring(&["a", "bb", "ccc"], 8);
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for b in raw.descs.iter_mut().chain(raw.infos.iter_mut()).step_by(3) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            raw.head_id = x;
            let log = decode(&l, &raw);
            assert!(log.entries.len() <= 9);
        }
        let raw = RawRing {
            count_bits: 40,
            ..RawRing::default()
        };
        assert!(!decode(&l, &raw).warnings.is_empty());
    }

    /// A synthetic pre-5.10 log buffer: 16-byte headers (ts, len, text_len,
    /// dict_len, facility, flags:5/level:3), records padded to 8 bytes.
    fn old_log(texts: &[&str], size: usize, start: usize) -> (OldLayout, Vec<u8>, u64, u64) {
        let l = OldLayout {
            header: 16,
            ts_nsec: 0,
            len: 8,
            text_len: 10,
            facility: 14,
            flags: member(15, 1, Some((0, 5))),
            level: member(15, 1, Some((5, 3))),
            caller_id: None,
        };
        let mut buf = vec![0u8; size];
        let mut idx = start;
        for (i, t) in texts.iter().enumerate() {
            let len = (16 + t.len()).div_ceil(8) * 8;
            // Like log_store(): wrap while a header still fits at the end;
            // a zero length there sends the reader back to the start.
            if idx + len + 16 > size {
                buf[idx + 8..idx + 10].copy_from_slice(&0u16.to_le_bytes());
                idx = 0;
            }
            buf[idx..idx + 8].copy_from_slice(&(i as u64 * 1000).to_le_bytes());
            buf[idx + 8..idx + 10].copy_from_slice(&(len as u16).to_le_bytes());
            buf[idx + 10..idx + 12].copy_from_slice(&(t.len() as u16).to_le_bytes());
            buf[idx + 15] = 4 << 5;
            buf[idx + 16..idx + 16 + t.len()].copy_from_slice(t.as_bytes());
            idx += len;
        }
        (l, buf, start as u64, idx as u64)
    }

    #[test]
    fn the_old_log_buffer_wraps_and_stops_at_damage() {
        let (l, buf, first, next) = old_log(&["first line", "second", "third one"], 128, 64);
        let log = decode_old(&l, &buf, first, next, 7);
        assert_eq!(texts(&log), ["first line", "second", "third one"]);
        let r = log.records().last().expect("record");
        assert_eq!((r.seq, r.level, r.ts_nsec), (9, 4, 2000));
        // The second record's length is now past the end of the buffer.
        let (l, mut buf, first, next) = old_log(&["a", "b", "c"], 256, 0);
        buf[24 + 8..24 + 10].copy_from_slice(&500u16.to_le_bytes());
        let log = decode_old(&l, &buf, first, next, 0);
        assert_eq!(texts(&log), ["a", "<gap 1>"]);
        // Garbage never loops.
        let log = decode_old(&l, &[0xff; 64], 8, 1, 0);
        assert!(log.entries.len() <= 9);
    }

    #[test]
    fn text_outside_the_valid_part_of_the_ring_is_a_gap() {
        let mut raw = ring(&["one", "two"], 8);
        raw.stale.push(0..16);
        let log = decode(&layout(), &raw);
        assert_eq!(texts(&log), ["<gap 1>", "two"]);
    }

    #[test]
    fn a_text_shorter_than_its_length_is_kept_and_marked() {
        let mut raw = ring(&["hello"], 8);
        raw.infos[16..18].copy_from_slice(&200u16.to_le_bytes());
        let log = decode(&layout(), &raw);
        let r = log.records().next().expect("record");
        assert!(r.truncated && r.text.starts_with("hello"));
    }
}
