//! A persistent copy of the type-name index, keyed by the image's build ID.
//!
//! The first lookup of a type defined late in `.debug_info` indexes every
//! unit (about a second on a distro vmlinux); the complete index is then
//! written to `<cache dir>/<build-id>.idx`, and later runs load it instead
//! of scanning. The cache directory is `$KPEEK_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/kpeek`, else `~/.cache/kpeek`; `KPEEK_CACHE=off`
//! disables it.
//!
//! File layout (little-endian):
//!
//! | bytes | |
//! |---|---|
//! | 8 | magic `KPEEKIDX` |
//! | 4 | format version |
//! | 8 | `.debug_info` size, 8 `.debug_abbrev` size (the image must match) |
//! | 2 + n | build ID length and bytes |
//! | 8 | entry count |
//! | entries | 8 DIE offset, 2 key length, key (kind byte + name) |
//! | 8 | unit count |
//! | units | 8 offset, 8 end of each unit of `.debug_info`, in order |
//! | 8 | checksum of everything before it |
//!
//! The units' bounds (version 2) spare a later run the walk over every
//! unit header of `.debug_info` (thousands of pages of a 400 MB section
//! touched, for a lookup that needs one unit).
//!
//! A file that is short, has another version or key, an offset outside
//! `.debug_info`, or a wrong checksum is ignored (and rewritten once the
//! index is built again).

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::hash::{FirstMap, FxHasher};

const MAGIC: &[u8; 8] = b"KPEEKIDX";
const VERSION: u32 = 2;
/// More entries than any kernel has (a distro vmlinux: about 120,000).
const MAX_ENTRIES: u64 = 1 << 24;
/// More units than any kernel has (a distro vmlinux: about 3,000).
const MAX_UNITS: u64 = 1 << 22;

/// The bounds of the units of `.debug_info`: (offset, end), in order.
pub(crate) type UnitBounds = Vec<(u64, u64)>;

/// What a cache file must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheKey {
    pub(crate) build_id: Vec<u8>,
    pub(crate) info_size: u64,
    pub(crate) abbrev_size: u64,
}

impl CacheKey {
    fn file_name(&self) -> String {
        let hex: String = self.build_id.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.idx")
    }
}

/// The cache directory the environment asks for, or `None` when disabled.
pub fn default_dir() -> Option<PathBuf> {
    if std::env::var_os("KPEEK_CACHE").is_some_and(|v| v == "off" || v == "0") {
        return None;
    }
    if let Some(dir) = std::env::var_os("KPEEK_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("kpeek"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("kpeek"))
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// What the cache had for an image.
pub(crate) enum Cached {
    /// No file.
    Missing,
    /// A file that is damaged or belongs to another image: rebuild it.
    Invalid,
    /// The index, and the units' bounds.
    Loaded(FirstMap, UnitBounds),
}

/// The index stored for `key` in `dir`.
pub(crate) fn load(dir: &Path, key: &CacheKey) -> Cached {
    match std::fs::read(dir.join(key.file_name())) {
        Err(_) => Cached::Missing,
        Ok(bytes) => parse(&bytes, key).map_or(Cached::Invalid, |(m, u)| Cached::Loaded(m, u)),
    }
}

fn parse(bytes: &[u8], key: &CacheKey) -> Option<(FirstMap, UnitBounds)> {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(8)?);
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let mut r = body;
    let mut take = |n: usize| -> Option<&[u8]> {
        if r.len() < n {
            return None;
        }
        let (a, b) = r.split_at(n);
        r = b;
        Some(a)
    };
    if take(8)? != MAGIC {
        return None;
    }
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
    let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let u16_at = |b: &[u8]| u16::from_le_bytes(b.try_into().unwrap_or([0; 2]));
    if u32_at(take(4)?) != VERSION
        || u64_at(take(8)?) != key.info_size
        || u64_at(take(8)?) != key.abbrev_size
    {
        return None;
    }
    let id_len = usize::from(u16_at(take(2)?));
    if take(id_len)? != key.build_id.as_slice() {
        return None;
    }
    let count = u64_at(take(8)?);
    if count > MAX_ENTRIES {
        return None;
    }
    let mut map = FirstMap::default();
    map.reserve(count as usize);
    for _ in 0..count {
        let offset = u64_at(take(8)?);
        let len = usize::from(u16_at(take(2)?));
        let name = take(len)?;
        if offset >= key.info_size || name.is_empty() {
            return None;
        }
        map.insert(name.into(), offset);
    }
    let count = u64_at(take(8)?);
    if count > MAX_UNITS {
        return None;
    }
    let mut units = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (offset, end) = (u64_at(take(8)?), u64_at(take(8)?));
        // In order, each after the last, inside `.debug_info`.
        let after = units.last().map_or(0, |&(_, e)| e);
        if offset < after || end <= offset || end > key.info_size {
            return None;
        }
        units.push((offset, end));
    }
    r.is_empty().then_some((map, units))
}

fn serialize(map: &FirstMap, units: &[(u64, u64)], key: &CacheKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + map.len() * 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&key.info_size.to_le_bytes());
    out.extend_from_slice(&key.abbrev_size.to_le_bytes());
    out.extend_from_slice(&(key.build_id.len() as u16).to_le_bytes());
    out.extend_from_slice(&key.build_id);
    let entries: Vec<(&Box<[u8]>, &u64)> = map.iter().filter(|(k, _)| k.len() <= 0xffff).collect();
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (k, &off) in entries {
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k);
    }
    out.extend_from_slice(&(units.len() as u64).to_le_bytes());
    for &(offset, end) in units {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Writes the index for `key` into `dir` (atomically: a temporary file,
/// then a rename). Failing to write a cache is not an error for the caller.
pub(crate) fn store(
    dir: &Path,
    key: &CacheKey,
    map: &FirstMap,
    units: &[(u64, u64)],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(key.file_name());
    let tmp = dir.join(format!(".{}.{}", key.file_name(), std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serialize(map, units, key))?;
    f.sync_all().ok();
    drop(f);
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        std::fs::remove_file(&tmp).ok();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            build_id: vec![0xab, 0xcd, 0xef],
            info_size: 0x10_0000,
            abbrev_size: 0x1000,
        }
    }

    fn map() -> FirstMap {
        let mut m = FirstMap::default();
        m.insert(b"\x01task_struct".to_vec().into_boxed_slice(), 0x1234);
        m.insert(b"\x04pid_t".to_vec().into_boxed_slice(), 0x99);
        m
    }

    fn units() -> UnitBounds {
        vec![(0, 0x100), (0x100, 0x8000), (0x8000, 0x10_0000)]
    }

    #[test]
    fn round_trip() {
        let bytes = serialize(&map(), &units(), &key());
        assert_eq!(parse(&bytes, &key()), Some((map(), units())));
    }

    #[test]
    fn units_out_of_order_or_outside_debug_info_are_refused() {
        for bad in [
            vec![(0x100, 0x200), (0, 0x100)],
            vec![(0, 0x100), (0x80, 0x200)],
            vec![(0x10, 0x10)],
            vec![(0, 0x10_0001)],
        ] {
            let bytes = serialize(&map(), &bad, &key());
            assert_eq!(parse(&bytes, &key()), None, "{bad:?}");
        }
    }

    #[test]
    fn another_image_or_damage_is_refused() {
        let bytes = serialize(&map(), &units(), &key());
        let other = CacheKey {
            build_id: vec![0xab, 0xcd, 0xee],
            ..key()
        };
        assert_eq!(parse(&bytes, &other), None);
        let bigger = CacheKey {
            info_size: 0x10_0001,
            ..key()
        };
        assert_eq!(parse(&bytes, &bigger), None);
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            assert_eq!(parse(&bytes[..cut], &key()), None, "cut at {cut}");
        }
        for flip in [0, 9, 30, bytes.len() / 2, bytes.len() - 9] {
            let mut b = bytes.clone();
            b[flip] ^= 0x40;
            assert_eq!(parse(&b, &key()), None, "flip at {flip}");
        }
    }

    #[test]
    fn offsets_outside_debug_info_are_refused_even_with_a_good_checksum() {
        let mut m = map();
        m.insert(b"\x01huge".to_vec().into_boxed_slice(), 0x20_0000);
        let bytes = serialize(&m, &units(), &key());
        assert_eq!(parse(&bytes, &key()), None);
    }

    #[test]
    fn store_then_load() {
        let dir = std::env::temp_dir().join(format!("kpeek-cache-test-{}", std::process::id()));
        store(&dir, &key(), &map(), &units()).expect("store");
        assert!(matches!(load(&dir, &key()), Cached::Loaded(m, u) if m == map() && u == units()));
        let other = CacheKey {
            build_id: vec![1],
            ..key()
        };
        assert!(matches!(load(&dir, &other), Cached::Missing));
        std::fs::remove_dir_all(&dir).ok();
    }
}
