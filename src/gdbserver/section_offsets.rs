//! `qOffsets`: tells GDB how far KASLR moved the kernel, so the vmlinux's
//! symbols line up with the dump without `nokaslr`.
//!
//! The answer is in segments, `TextSeg=;DataSeg=`: the run-time addresses of
//! the vmlinux's first two `PT_LOAD`s. GDB then moves every section by the
//! KASLR offset, exactly like `file vmlinux -o OFFSET`. Section offsets
//! (`Text=;Data=;Bss=`) would not do: GDB applies them to `.text`, `.data`
//! and `.bss` only, and leaves `.rodata` (`linux_banner`,
//! `__per_cpu_offset`), `.init.*` and the rest at their link addresses.
//!
//! Served without a vmlinux (the dump's kallsyms and BTF), the segments
//! are x86_64's: `_text` and `_sdata`, from kallsyms, so a vmlinux the
//! user loads into GDB lines up all the same.
//!
//! Per-CPU variables: before Linux 6.15, x86_64 links `.data..percpu` at
//! address 0 (its own `PT_LOAD`), so a per-CPU symbol's value is an offset
//! that KASLR does not move; GDB moves it all the same. `p &runqueues` shows
//! the offset plus the KASLR offset, and the kernel scripts' `per_cpu()`
//! (`$lx_per_cpu`, `lx-cpus`) read the wrong place. The right address is
//! `(char *)&runqueues - OFFSET + __per_cpu_offset[cpu]`.

use std::path::Path;

use gdbstub::target::ext::section_offsets::{Offsets, SectionOffsets};
use object::elf::{FileHeader64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};

use super::Session;

impl SectionOffsets for Session<'_, '_> {
    fn get_section_offsets(&mut self) -> Result<Offsets<u64>, Self::Error> {
        let off = self.snap.kaslr_offset();
        Ok(match self.snap.load_segments {
            Some((text, data)) => Offsets::Segments {
                text_seg: text.wrapping_add(off),
                data_seg: Some(data.wrapping_add(off)),
            },
            // Not an ELF GDB can map by segments: the three sections at least.
            None => Offsets::Sections {
                text: off,
                data: off,
                bss: Some(off),
            },
        })
    }
}

/// The link-time addresses of the first two `PT_LOAD`s of an ELF file.
pub fn load_segments(path: &Path) -> Option<(u64, u64)> {
    let file = std::fs::File::open(path).ok()?;
    let cache = ReadCache::new(file);
    let header = FileHeader64::<Endianness>::parse(&cache).ok()?;
    let endian = header.endian().ok()?;
    let mut loads = header
        .program_headers(endian, &cache)
        .ok()?
        .iter()
        .filter(|p| p.p_type(endian) == PT_LOAD)
        .map(|p| p.p_vaddr(endian));
    Some((loads.next()?, loads.next()?))
}
