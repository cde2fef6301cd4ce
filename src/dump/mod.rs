//! Crash dump readers: ELF vmcores, kdump-compressed files and flattened
//! streams. A dump is physical memory plus notes; nothing here knows about
//! kernel structures or DWARF.

pub mod elf;
pub mod kdump;
mod lzo;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::addr::{PhysAddr, VirtAddr};
use crate::memory::MemorySource;
use crate::notes::{Notes, VmcoreInfo};
use crate::{Error, Result};

pub use elf::ElfVmcore;
pub use kdump::{Compression, KdumpFile};

/// The bytes of a file: mapped read-only, or owned (tests, fuzzing).
#[derive(Debug)]
pub(crate) enum Mapped {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Mapped::Map(m) => m,
            Mapped::Owned(v) => v,
        }
    }

    fn open(path: &Path) -> Result<Mapped> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        // Before opening: a FIFO with no writer would block `open` for ever,
        // and a directory opens but cannot be mapped ("No such device").
        let kind = std::fs::metadata(path).map_err(io)?.file_type();
        if !kind.is_file() {
            let what = if kind.is_dir() {
                "a directory"
            } else {
                "not a regular file (a FIFO, socket or device)"
            };
            return Err(Error::bad_file(
                path,
                format!("{what}: a dump must be a regular file"),
            ));
        }
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Err(Error::bad_file(path, "empty file"));
        }
        // SAFETY: the map is read-only and private to this process. A dump
        // being truncated underneath us while mapped would fault (SIGBUS);
        // dumps are inputs at rest, and kpeek never writes to them.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(Mapped::Map(map))
    }
}

/// The kind of dump, as `kpeek info` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DumpFormat {
    /// ELF vmcore from kdump (`/proc/vmcore`, `makedumpfile -E`).
    ElfKdump,
    /// ELF from QEMU `dump-guest-memory` (physical `PT_LOAD`s).
    ElfQemu,
    /// ELF from QEMU `dump-guest-memory -p` (virtual mappings).
    ElfQemuPaging,
    /// kdump-compressed (`KDUMP   `).
    KdumpCompressed,
    /// kdump-compressed in the flattened stream format (`makedumpfile -F`, QEMU `kdump-*`).
    KdumpFlattened,
}

impl DumpFormat {
    /// A human name.
    pub fn describe(self) -> &'static str {
        match self {
            DumpFormat::ElfKdump => "ELF vmcore (kdump)",
            DumpFormat::ElfQemu => "ELF (QEMU dump-guest-memory)",
            DumpFormat::ElfQemuPaging => "ELF with paging (QEMU dump-guest-memory -p)",
            DumpFormat::KdumpCompressed => "kdump-compressed",
            DumpFormat::KdumpFlattened => "kdump-compressed, flattened",
        }
    }
}

/// The reader behind a dump.
#[derive(Debug)]
pub enum Reader {
    /// An ELF vmcore.
    Elf(ElfVmcore),
    /// A kdump-compressed file or flattened stream.
    Kdump(KdumpFile),
}

/// What a dump says of itself as a whole.
#[derive(Clone, Debug)]
pub struct Health {
    /// The page compression of a kdump-compressed dump.
    pub compression: Option<Compression>,
    /// Pages of RAM left out (filtered, excluded, or cut off the end).
    pub excluded_pages: u64,
    /// Bytes the headers describe that the file does not have.
    pub truncated_bytes: u64,
    /// The dump is marked incomplete, and by what.
    pub incomplete: Option<&'static str>,
    /// What else is wrong with it as a whole: notes that cannot be read,
    /// overlapping ranges that disagree.
    pub problems: Vec<String>,
}

/// An opened crash dump.
#[derive(Debug)]
pub struct Dump {
    /// Where it came from.
    pub path: PathBuf,
    /// What kind of dump it is.
    pub format: DumpFormat,
    /// The reader.
    pub reader: Reader,
}

impl Dump {
    /// Open a dump, recognising its format from its first bytes.
    pub fn open(path: &Path) -> Result<Dump> {
        let file = Mapped::open(path)?;
        Dump::from_mapped(path, file)
    }

    /// Open a dump held in memory (tests and fuzzing).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Dump> {
        Dump::from_mapped(path, Mapped::Owned(bytes))
    }

    fn from_mapped(path: &Path, file: Mapped) -> Result<Dump> {
        let head = file.bytes().get(..16).unwrap_or(file.bytes());
        let (format, reader) = if head.starts_with(b"\x7fELF") {
            let elf = ElfVmcore::parse(path, file)?;
            let format = if elf.notes().qemu_cpus.is_empty() {
                DumpFormat::ElfKdump
            } else if elf.virtual_loads().is_empty() {
                DumpFormat::ElfQemu
            } else {
                DumpFormat::ElfQemuPaging
            };
            (format, Reader::Elf(elf))
        } else if head.starts_with(b"KDUMP   ") {
            (
                DumpFormat::KdumpCompressed,
                Reader::Kdump(KdumpFile::parse(path, file)?),
            )
        } else if head.starts_with(b"makedumpfile") {
            (
                DumpFormat::KdumpFlattened,
                Reader::Kdump(KdumpFile::parse_flattened(path, file)?),
            )
        } else if head.starts_with(b"DISKDUMP") {
            return Err(Error::bad_file(
                path,
                "old-style DISKDUMP dumps are not supported",
            ));
        } else {
            return Err(Error::bad_file(
                path,
                "not a crash dump: expected an ELF vmcore, a kdump-compressed file (KDUMP) or a flattened makedumpfile stream",
            ));
        };
        Ok(Dump {
            path: path.to_owned(),
            format,
            reader,
        })
    }

    /// The dump's notes.
    pub fn notes(&self) -> &Notes {
        match &self.reader {
            Reader::Elf(e) => e.notes(),
            Reader::Kdump(k) => k.notes(),
        }
    }

    /// The kernel-virtual mappings of a QEMU paging dump (`-p`): (virtual,
    /// physical, length); empty for other dumps.
    pub fn virtual_loads(&self) -> &[(VirtAddr, PhysAddr, u64)] {
        match &self.reader {
            Reader::Elf(e) => e.virtual_loads(),
            Reader::Kdump(_) => &[],
        }
    }

    /// What the dump says of itself as a whole: what is missing from it.
    pub fn health(&self) -> Health {
        match &self.reader {
            Reader::Elf(e) => Health {
                compression: None,
                excluded_pages: (e.excluded_bytes() + e.truncated_bytes()) / 4096,
                truncated_bytes: e.truncated_bytes(),
                incomplete: e.incomplete().then_some("ELF e_flags"),
                problems: e
                    .overlap_conflict()
                    .map(str::to_owned)
                    .into_iter()
                    .collect(),
            },
            Reader::Kdump(k) => Health {
                compression: Some(k.header_compression()),
                excluded_pages: k.excluded_pages,
                truncated_bytes: 0,
                incomplete: k.incomplete().then_some("DUMP_DH_COMPRESSED_INCOMPLETE"),
                problems: k.notes_problem().map(str::to_owned).into_iter().collect(),
            },
        }
    }

    /// VMCOREINFO, if the dump carries it.
    pub fn vmcoreinfo(&self) -> Option<&VmcoreInfo> {
        self.notes().vmcoreinfo.as_ref()
    }
}

impl MemorySource for Dump {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        match &self.reader {
            Reader::Elf(e) => e.read_phys(addr, buf),
            Reader::Kdump(k) => k.read_phys(addr, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_dump() {
        let p = Path::new("x");
        for bytes in [
            b"hello world, not a dump".to_vec(),
            b"DISKDUMP........".to_vec(),
            b"\x7fELF".to_vec(),
        ] {
            let err = Dump::from_bytes(p, bytes).expect_err("not a dump");
            assert_eq!(err.code(), "bad_file", "{err}");
        }
    }

    /// Found by `fuzz/fuzz_targets/dump_elf.rs` (the first 64 bytes of its
    /// crash input): `e_phnum` = `PN_XNUM` sends the count to section
    /// header 0 at `e_shoff`, here the top of the address space; adding
    /// `sh_info`'s offset to it overflowed (a panic in debug builds).
    #[test]
    fn pn_xnum_with_e_shoff_at_the_top_is_an_error() {
        let mut bytes = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x04\0\x3e\0\x01\0\0\0".to_vec();
        bytes.resize(64, 0xff);
        let err = Dump::from_bytes(Path::new("x"), bytes).expect_err("damaged");
        assert_eq!(err.code(), "bad_file", "{err}");
        assert!(err.to_string().contains("PN_XNUM"), "{err}");
    }
}
