//! Debug info of a kernel image: types, layouts and symbols from a vmlinux.
//!
//! [`KernelDebugInfo::open`] maps the file once and reads only the ELF section
//! headers. Everything else is decoded when a lookup first needs it:
//!
//! * the ELF symbol table ([`symbols`]) on the first symbol lookup;
//! * the type-name index ([`types`]) unit by unit, in `.debug_info` order,
//!   only as far as the lookup needs, so a type defined in an early
//!   compilation unit (as most core kernel types are) is found without
//!   reading the rest; a name that is still missing after a while switches to
//!   one parallel pass over the remaining units;
//! * single DIEs and their children, when a type is loaded.
//!
//! `SHF_COMPRESSED` debug sections (zlib or zstd) are decompressed once, on
//! first use.
//!
//! # Relocations
//!
//! A vmlinux linked with `--emit-relocs` (x86_64 with `CONFIG_RELOCATABLE`
//! keeps them for `arch/x86/tools/relocs`) is an `ET_EXEC` file that still
//! carries `.rela.debug_*` sections. They need not be applied: the linker has
//! already written the final values into the debug sections, and the
//! relocations only describe them. This was checked on the Linux 6.1 test
//! kernel: all 2,390,931 `R_X86_64_32`/`R_X86_64_64` entries of
//! `.rela.debug_info` (plus 5,520 `R_X86_64_NONE`), and every entry of
//! `.rela.debug_line`, `.rela.debug_aranges` and `.rela.debug_rnglists`,
//! compute exactly the value already in the section. So the sections are
//! read as they are for `ET_EXEC` and `ET_DYN`; only relocatable objects
//! (`ET_REL`, e.g. an unlinked `vmlinux.o`), whose debug sections do hold
//! zeros, get their `.rela.debug_*` applied (the private `relocate` module;
//! the Linux 6.12 `vmlinux.o` then reads exactly like its vmlinux).

pub mod btf;
pub mod cache;
pub(crate) mod enumerate;
pub(crate) mod hash;
pub(crate) mod index;
mod names;
mod origin;
mod relocate;
pub mod symbols;
pub mod types;

pub mod cfi;
pub mod layout;
pub mod lines;

pub use origin::Origin;
use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use gimli::{EndianSlice, LittleEndian};
use memmap2::Mmap;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Object, ObjectSection};

use crate::addr::LinkAddr;
use crate::error::{Error, Result};

pub use layout::{Layout, LayoutMember};
pub use symbols::Symbol;
pub use types::{Member, TypeId};

/// The reader every DWARF section is parsed through.
pub(crate) type R<'a> = EndianSlice<'a, LittleEndian>;

/// The debug info of one kernel image (a vmlinux with DWARF).
///
/// The file is mapped once, and every table is built lazily; see the
/// [module documentation](self). `KernelDebugInfo` is `Sync`: lookups may come
/// from several threads.
pub struct KernelDebugInfo {
    path: PathBuf,
    map: Mmap,
    /// Every section header, in file order.
    sections: Vec<SectionInfo>,
    /// The sections DWARF reading needs, by role.
    debug: DebugSections,
    /// The GNU build ID note's descriptor, as a range of the file.
    build_id: Option<Range<usize>>,
    /// Whether this is an `ET_REL` object whose debug sections need relocating.
    relocatable: bool,
    symbols: OnceLock<symbols::SymbolTable>,
    units: OnceLock<Result<Vec<index::UnitInfo>, String>>,
    pub(crate) index: Mutex<index::NameIndex>,
    pub(crate) enumerators: Mutex<index::EnumeratorIndex>,
    pub(crate) type_cache: Mutex<HashMap<u64, Arc<types::Type>>>,
    /// Where the type-name index is kept between runs (see [`cache`]).
    cache_dir: Option<PathBuf>,
    /// The types come from BTF rather than DWARF (see [`btf`]).
    pub(crate) btf: Option<btf::Btf>,
}

/// Where a [`KernelDebugInfo`]'s symbols come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolSource {
    /// The vmlinux's ELF `.symtab`.
    Elf,
    /// The kernel's compressed kallsyms tables, read from its memory.
    Kallsyms,
    /// None (a raw BTF file).
    None,
}

/// Where a [`KernelDebugInfo`]'s types come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeSource {
    /// `.debug_info` of a vmlinux.
    Dwarf,
    /// The `.BTF` section of a vmlinux, or a raw BTF blob.
    Btf,
}

impl std::fmt::Debug for KernelDebugInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelDebugInfo")
            .field("path", &self.path)
            .field("sections", &self.sections.len())
            .finish_non_exhaustive()
    }
}

/// What `open` kept of one ELF section header.
#[derive(Debug, Clone)]
pub(crate) struct SectionInfo {
    pub(crate) name: String,
    pub(crate) addr: u64,
    pub(crate) size: u64,
    /// Where the bytes are in the file (`None` for `SHT_NOBITS`).
    pub(crate) file_range: Option<Range<usize>>,
    pub(crate) alloc: bool,
    pub(crate) compression: Option<object::CompressionFormat>,
    pub(crate) uncompressed_size: u64,
    /// The section's bytes once decompressed or relocated.
    pub(crate) owned: OnceLock<std::result::Result<Vec<u8>, String>>,
}

/// Indexes into [`KernelDebugInfo::sections`] of the DWARF sections.
#[derive(Debug, Default)]
struct DebugSections {
    info: Option<usize>,
    abbrev: Option<usize>,
    str: Option<usize>,
    line_str: Option<usize>,
    str_offsets: Option<usize>,
}

/// The DWARF sections of a [`KernelDebugInfo`], ready for gimli.
#[derive(Clone, Copy)]
pub(crate) struct Dw<'a> {
    pub(crate) info: gimli::DebugInfo<R<'a>>,
    pub(crate) abbrev: gimli::DebugAbbrev<R<'a>>,
    pub(crate) str: gimli::DebugStr<R<'a>>,
    pub(crate) line_str: gimli::DebugLineStr<R<'a>>,
    pub(crate) str_offsets: gimli::DebugStrOffsets<R<'a>>,
}

impl KernelDebugInfo {
    /// Opens a kernel image with debug info.
    ///
    /// Fails with [`Error::Io`] if the file cannot be read, [`Error::BadFile`]
    /// if it is not a 64-bit little-endian ELF file, and
    /// [`Error::NoDebugInfo`] if it has no `.debug_info`.
    pub fn open(path: &Path) -> Result<KernelDebugInfo> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private. kpeek never writes through
        // it; a file truncated under our feet can still fault, as with any
        // mmap-based reader (gimli, addr2line, object all accept this).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_map(path, map, true)
    }

    /// Like [`KernelDebugInfo::open`], for an ELF image already in memory (tests
    /// and fuzzing): the bytes are copied into an anonymous read-only map;
    /// `path` names them in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<KernelDebugInfo> {
        let mut map =
            memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        map[..bytes.len()].copy_from_slice(bytes);
        let map = map.make_read_only().map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.is_empty() {
            return Err(Error::BadFile {
                path: path.to_path_buf(),
                what: "not an ELF file".into(),
            });
        }
        Self::from_map(path, map, true)
    }

    /// Opens BTF types: `path` is a vmlinux with a `.BTF` section, or a raw
    /// BTF blob such as `/sys/kernel/btf/vmlinux` (told apart by the
    /// `0xeB9F` magic). Types, layouts and member lookups then come from
    /// BTF; the ELF symbol table, if `path` is an ELF file, still answers
    /// symbol lookups. `cacheline_size` is the one pahole's alignment
    /// inference uses (see [`btf`]; [`btf::DEFAULT_CACHELINE`] normally).
    pub fn open_btf(path: &Path, cacheline_size: u32) -> Result<KernelDebugInfo> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // /sys/kernel/btf/vmlinux reports a size but is not mappable: read
        // a raw blob, map an ELF file.
        let mut head = [0u8; 4];
        {
            use std::io::Read;
            let mut f = &file;
            let _ = f.read(&mut head).map_err(io)?;
        }
        if btf::is_btf(&head) {
            let data = std::fs::read(path).map_err(io)?;
            return Self::from_btf_bytes(path, data, cacheline_size);
        }
        // SAFETY: as in `open`.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let mut di = Self::from_map(path, map, false)?;
        let section = di
            .sections
            .iter()
            .find(|s| s.name == ".BTF")
            .ok_or_else(|| Error::BadFile {
                path: path.to_path_buf(),
                what: "no .BTF section (the kernel was built without CONFIG_DEBUG_INFO_BTF)".into(),
            })?;
        let data = di.section_bytes(section)?.to_vec();
        di.btf = Some(btf::Btf::parse(path.to_path_buf(), data, cacheline_size)?);
        Ok(di)
    }

    /// Debug info from a raw BTF blob already in memory (for instance the
    /// kernel's own, read out of a dump); `origin` names it in messages.
    /// There is no ELF symbol table.
    pub fn from_btf_bytes(
        origin: &Path,
        data: Vec<u8>,
        cacheline_size: u32,
    ) -> Result<KernelDebugInfo> {
        let btf = btf::Btf::parse(origin.to_path_buf(), data, cacheline_size)?;
        let map = memmap2::MmapMut::map_anon(1)
            .and_then(|m| m.make_read_only())
            .map_err(|source| Error::Io {
                path: origin.to_path_buf(),
                source,
            })?;
        Ok(KernelDebugInfo {
            path: origin.to_path_buf(),
            map,
            sections: Vec::new(),
            debug: DebugSections::default(),
            build_id: None,
            relocatable: false,
            symbols: OnceLock::new(),
            units: OnceLock::new(),
            index: Mutex::new(index::NameIndex::default()),
            enumerators: Mutex::new(index::EnumeratorIndex::default()),
            type_cache: Mutex::new(HashMap::new()),
            cache_dir: None,
            btf: Some(btf),
        })
    }

    /// Where symbol lookups are answered from.
    pub fn symbol_source(&self) -> SymbolSource {
        let table = self.symbol_table();
        if table.from_kallsyms {
            SymbolSource::Kallsyms
        } else if table.len() == 0 {
            SymbolSource::None
        } else {
            SymbolSource::Elf
        }
    }

    /// Answers symbol lookups from the kernel's own kallsyms instead of the
    /// ELF symbol table: (name, link-time address) in the kernel's order
    /// (run-time address less the KASLR offset; zero-based per-CPU symbols
    /// as they are). Only before the first symbol lookup: gives `false`
    /// (and changes nothing) once the table is built.
    pub fn use_kallsyms(&self, symbols: Vec<(String, LinkAddr)>) -> bool {
        let list = symbols.into_iter().map(|(n, a)| (n, a.get())).collect();
        self.symbols
            .set(symbols::SymbolTable::from_kallsyms(list))
            .is_ok()
    }

    /// Whether the types come from DWARF or from BTF.
    pub fn type_source(&self) -> TypeSource {
        if self.btf.is_some() {
            TypeSource::Btf
        } else {
            TypeSource::Dwarf
        }
    }

    fn from_map(path: &Path, map: Mmap, need_dwarf: bool) -> Result<KernelDebugInfo> {
        let bad = |what: String| Error::BadFile {
            path: path.to_path_buf(),
            what,
        };
        if map.len() < 4 || &map[..4] != b"\x7fELF" {
            return Err(bad("not an ELF file".into()));
        }
        let elf = ElfFile64::<object::LittleEndian>::parse(&*map)
            .map_err(|e| bad(format!("not a 64-bit little-endian ELF file: {e}")))?;
        let endian = elf.endian();
        let relocatable = elf.elf_header().e_type(endian) == object::elf::ET_REL;
        let mut sections = Vec::new();
        let mut debug = DebugSections::default();
        for section in elf.sections() {
            let name = section.name().unwrap_or("").to_string();
            let header = section.elf_section_header();
            let flags = header.sh_flags(endian);
            // For a compressed section this is the compressed stream, after
            // the `Elf64_Chdr`.
            let compressed = section
                .compressed_file_range()
                .map_err(|e| bad(format!("section {name}: {e}")))?;
            let (compression, uncompressed_size) =
                if compressed.format == object::CompressionFormat::None {
                    (None, section.size())
                } else {
                    (Some(compressed.format), compressed.uncompressed_size)
                };
            let file_range = usize::try_from(compressed.offset)
                .ok()
                .and_then(|start| {
                    let len = usize::try_from(compressed.compressed_size).ok()?;
                    let end = start.checked_add(len)?;
                    (end <= map.len()).then_some(start..end)
                })
                .filter(|_| header.sh_type(endian) != object::elf::SHT_NOBITS);
            let idx = sections.len();
            match name.as_str() {
                ".debug_info" => debug.info = Some(idx),
                ".debug_abbrev" => debug.abbrev = Some(idx),
                ".debug_str" => debug.str = Some(idx),
                ".debug_line_str" => debug.line_str = Some(idx),
                ".debug_str_offsets" => debug.str_offsets = Some(idx),
                _ => {}
            }
            sections.push(SectionInfo {
                name,
                addr: section.address(),
                size: section.size(),
                file_range,
                alloc: flags.0 & object::elf::SHF_ALLOC.0 != 0,
                compression,
                uncompressed_size,
                owned: OnceLock::new(),
            });
        }
        let build_id = match elf.build_id() {
            Ok(Some(id)) => {
                let start = id.as_ptr() as usize - map.as_ptr() as usize;
                Some(start..start + id.len())
            }
            _ => None,
        };
        if need_dwarf && (debug.info.is_none() || debug.abbrev.is_none()) {
            return Err(Error::NoDebugInfo {
                path: path.to_path_buf(),
            });
        }
        Ok(KernelDebugInfo {
            path: path.to_path_buf(),
            map,
            sections,
            debug,
            build_id,
            relocatable,
            symbols: OnceLock::new(),
            units: OnceLock::new(),
            index: Mutex::new(index::NameIndex::default()),
            enumerators: Mutex::new(index::EnumeratorIndex::default()),
            type_cache: Mutex::new(HashMap::new()),
            cache_dir: cache::default_dir(),
            btf: None,
        })
    }

    /// Keep the type-name index in `dir` between runs (`None`: don't);
    /// see [`cache`]. [`cache::default_dir`] is what the environment asks
    /// for.
    pub fn set_cache_dir(&mut self, dir: Option<PathBuf>) {
        self.cache_dir = dir;
    }

    /// The cache directory and key, when caching is on and the image has a
    /// build ID.
    pub(crate) fn cache_key(&self) -> Option<(PathBuf, cache::CacheKey)> {
        // The cache holds DWARF offsets: not for BTF-backed types.
        if self.btf.is_some() {
            return None;
        }
        let dir = self.cache_dir.clone()?;
        let size = |idx: Option<usize>| {
            idx.and_then(|i| self.sections.get(i))
                .map(|s| s.uncompressed_size)
        };
        let key = cache::CacheKey {
            build_id: self.build_id()?.to_vec(),
            info_size: size(self.debug.info)?,
            abbrev_size: size(self.debug.abbrev)?,
        };
        Some((dir, key))
    }

    /// The file this debug info was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GNU build ID (`NT_GNU_BUILD_ID`), if the image has one.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.clone().and_then(|r| self.map.get(r))
    }

    /// The ELF symbol (`.symtab`) of this name.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbol_table().by_name(name)
    }

    /// The function or object symbol at or before `addr`, and how far past
    /// its start `addr` is. Untyped symbols in a section count too (the
    /// kernel's assembly entry points are `STT_NOTYPE`); among symbols at
    /// the same address, a sized one wins over a zero-sized marker.
    pub fn symbol_at(&self, addr: LinkAddr) -> Option<(Symbol, u64)> {
        self.symbol_table().at(addr)
    }

    /// The kernel's own name for a code address, as `%pB` and
    /// `/proc/PID/stack` print it: the kallsyms symbol at or before `addr`,
    /// the offset into it, and `size` as kallsyms computes it (up to the
    /// next symbol, padding included). `None` outside the kernel's text.
    pub fn kallsyms_at(&self, addr: LinkAddr) -> Option<(Symbol, u64)> {
        self.symbol_table().kallsyms_at(addr)
    }

    /// Whether `name` is a per-CPU variable in x86_64's zero-based per-CPU
    /// layout (every kernel before 6.15): `__per_cpu_start` is 0 and the
    /// symbol lies in `[__per_cpu_start, __per_cpu_end)`.
    pub fn is_percpu_symbol(&self, name: &str) -> bool {
        self.symbol_table().is_percpu(name)
    }

    /// `len` bytes of an allocated section (`.rodata`, `.data`, …) at a link
    /// address, or `None` if they are not all inside one section with file
    /// contents.
    pub fn section_data(&self, addr: LinkAddr, len: usize) -> Option<&[u8]> {
        let addr = addr.get();
        let end = addr.checked_add(len as u64)?;
        let section = self.sections.iter().find(|s| {
            // x86_64's zero-based `.data..percpu` is at address 0: its link
            // addresses are offsets into the per-CPU template.
            s.alloc && s.size != 0 && s.addr <= addr && end <= s.addr.saturating_add(s.size)
        })?;
        let data = self.section_bytes(section).ok()?;
        let start = usize::try_from(addr - section.addr).ok()?;
        data.get(start..start.checked_add(len)?)
    }

    /// A section by name: its link address and bytes (decompressed when
    /// the file compresses it). `None` when there is no such section or it
    /// has no file contents.
    pub fn section(&self, name: &str) -> Option<(LinkAddr, &[u8])> {
        let section = self
            .sections
            .iter()
            .find(|s| s.name == name && s.file_range.is_some())?;
        let data = self.section_bytes(section).ok()?;
        Some((LinkAddr(section.addr), data))
    }

    pub(crate) fn symbol_table(&self) -> &symbols::SymbolTable {
        self.symbols
            .get_or_init(|| symbols::SymbolTable::parse(&self.map))
    }

    /// The bytes of a section: mapped, or decompressed/relocated once.
    fn section_bytes<'a>(&'a self, section: &'a SectionInfo) -> Result<&'a [u8]> {
        let raw = section
            .file_range
            .clone()
            .and_then(|r| self.map.get(r))
            .unwrap_or(&[]);
        let needs_reloc = self.relocatable && section.name.starts_with(".debug_");
        if section.compression.is_none() && !needs_reloc {
            return Ok(raw);
        }
        let owned = section.owned.get_or_init(|| {
            let mut data = match section.compression {
                Some(format) => object::CompressedData {
                    format,
                    data: raw,
                    uncompressed_size: section.uncompressed_size,
                }
                .decompress()
                .map(|c| c.into_owned())
                .map_err(|e| format!("{}: cannot decompress: {e}", section.name))?,
                None => raw.to_vec(),
            };
            if needs_reloc {
                relocate::apply(&self.map, &section.name, &mut data)?;
            }
            Ok(data)
        });
        owned.as_deref().map_err(|what| Error::BadFile {
            path: self.path.clone(),
            what: what.clone(),
        })
    }

    fn debug_section(&self, idx: Option<usize>) -> Result<&[u8]> {
        match idx.and_then(|i| self.sections.get(i)) {
            Some(s) => self.section_bytes(s),
            None => Ok(&[]),
        }
    }

    /// The DWARF sections, for gimli.
    pub(crate) fn dw(&self) -> Result<Dw<'_>> {
        let s =
            |idx| -> Result<R<'_>> { Ok(EndianSlice::new(self.debug_section(idx)?, LittleEndian)) };
        Ok(Dw {
            info: gimli::DebugInfo::from(s(self.debug.info)?),
            abbrev: gimli::DebugAbbrev::from(s(self.debug.abbrev)?),
            str: gimli::DebugStr::from(s(self.debug.str)?),
            line_str: gimli::DebugLineStr::from(s(self.debug.line_str)?),
            str_offsets: gimli::DebugStrOffsets::from(s(self.debug.str_offsets)?),
        })
    }

    /// The compilation units, in `.debug_info` order (headers only).
    pub(crate) fn units(&self) -> Result<&[index::UnitInfo]> {
        let units = self
            .units
            .get_or_init(|| index::UnitInfo::list(self).map_err(|e| e.to_string()));
        match units {
            Ok(u) => Ok(u),
            Err(what) => Err(Error::BadDwarf { what: what.clone() }),
        }
    }
}

/// Turns a gimli error into ours, saying where it happened.
pub(crate) fn dwarf_err(e: gimli::Error, at: u64) -> Error {
    Error::BadDwarf {
        what: format!("{e} at .debug_info+{at:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("kpeek-dwarf-{}-{name}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.write_all(bytes).unwrap();
        path
    }

    #[test]
    fn not_elf_is_a_clear_error() {
        let path = temp_file("notelf", b"hello, this is not an ELF file");
        let err = KernelDebugInfo::open(&path).unwrap_err();
        assert_eq!(err.code(), "bad_file");
        assert!(err.to_string().contains("not an ELF file"), "{err}");
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn truncated_elf_is_a_clear_error() {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(40, 0);
        let path = temp_file("truncated", &bytes);
        let err = KernelDebugInfo::open(&path).unwrap_err();
        assert_eq!(err.code(), "bad_file");
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn missing_file_is_io() {
        let err = KernelDebugInfo::open(Path::new("/nonexistent/kpeek/vmlinux")).unwrap_err();
        assert_eq!(err.code(), "io");
    }

    #[test]
    fn elf_without_dwarf_says_so() {
        // This test binary itself may or may not carry DWARF; /bin/true from
        // a distribution never does.
        let path = Path::new("/bin/true");
        if !path.exists() {
            return;
        }
        match KernelDebugInfo::open(path) {
            Err(e) => {
                assert_eq!(e.code(), "no_debug_info");
                assert!(e.to_string().contains("linux-image-"), "{e}");
            }
            Ok(_) => eprintln!("/bin/true has debug info; skipping"),
        }
    }
}
