//! Finding a kernel's debug info when nobody names it: the vmlinux (and
//! module `.ko` debug files) matching a dump, where distributions install
//! them ([`search`]) or from a debuginfod server ([`debuginfod`]).
//!
//! What identifies the dumped kernel: VMCOREINFO's `BUILD-ID` (since
//! Linux 5.9, commit 0935288c6e00 "kdump: append kernel build-id string to
//! VMCOREINFO") and `OSRELEASE`; without them, the `NT_GNU_BUILD_ID` note
//! in the kernel's own `.notes` (`__start_notes`..`__stop_notes`, found
//! with its kallsyms) and its `linux_banner`.

pub mod debuginfod;
pub mod search;

use std::path::Path;
use std::sync::Arc;

pub use search::{Origin, Outcome, Search, Wanted};

use crate::debuginfo::KernelDebugInfo;
use crate::dump::Dump;
use crate::kernel::{OpenOptions, Program};
use crate::Result;

/// A dump opened with the vmlinux kpeek found for it, or with none.
pub struct Opened {
    /// The program.
    pub program: Program,
    /// Where its vmlinux came from ([`Origin::None`]: BTF + kallsyms).
    pub origin: Origin,
    /// What the search skipped or failed at, worth telling (one line each).
    pub notes: Vec<String>,
}

/// Open a dump given no vmlinux: look for the one that matches it
/// (`search`), else use the kernel's own kallsyms and BTF.
pub fn open_dump(
    core: &Path,
    options: &OpenOptions,
    search: &Search,
    progress: &mut dyn FnMut(debuginfod::Progress<'_>),
) -> Result<Opened> {
    let dump = Arc::new(Dump::open(core)?);
    let vmcoreinfo = dump.vmcoreinfo();
    let build_id = vmcoreinfo.and_then(|v| v.build_id());
    let release = vmcoreinfo.and_then(|v| v.osrelease()).map(str::to_owned);
    let mut notes = Vec::new();
    // With a build ID, search before reading anything else of the dump.
    if build_id.is_some() {
        let wanted = Wanted {
            build_id: build_id.as_deref(),
            release: release.as_deref(),
            banner: None,
        };
        let open = |debug| Program::from_parts(debug, dump.clone(), options);
        if let Some(opened) = search_and_open(search, &wanted, &open, progress, &mut notes) {
            return Ok(opened.with_notes(notes));
        }
    }
    let program = Program::from_dump_alone(dump.clone(), options)?;
    if build_id.is_none() {
        // The kernel's own build ID and banner, read through its kallsyms.
        let from_memory = image_build_id(&program);
        let release = release.or_else(|| program.banner.split_whitespace().nth(2).map(Into::into));
        let wanted = Wanted {
            build_id: from_memory.as_deref(),
            release: release.as_deref(),
            banner: Some(program.banner.as_bytes()),
        };
        let open = |debug| Program::from_parts(debug, dump.clone(), options);
        if let Some(opened) = search_and_open(search, &wanted, &open, progress, &mut notes) {
            return Ok(opened.with_notes(notes));
        }
    }
    Ok(Opened {
        program,
        origin: Origin::None,
        notes,
    })
}

/// The running kernel through `/proc/kcore` given no vmlinux: look for
/// the one whose build ID its VMCOREINFO (or `/sys/kernel/notes`) names,
/// where distributions install it, else use its own kallsyms and BTF.
pub fn open_kcore(
    kcore: &Path,
    options: &OpenOptions,
    search: &Search,
    progress: &mut dyn FnMut(debuginfod::Progress<'_>),
) -> Result<Opened> {
    let core = Arc::new(crate::live::kcore::Kcore::open(kcore)?);
    let vmcoreinfo = core.notes().vmcoreinfo.as_ref();
    let build_id = vmcoreinfo.and_then(|v| v.build_id()).or_else(|| {
        // World-readable: the running kernel's own .notes section (only
        // when it is the running kernel's kcore, not a file given).
        if kcore != Path::new(crate::live::kcore::DEFAULT_PATH) {
            return None;
        }
        let notes = std::fs::read("/sys/kernel/notes").ok()?;
        gnu_build_id(&notes).map(<[u8]>::to_vec)
    });
    let release = vmcoreinfo.and_then(|v| v.osrelease()).map(str::to_owned);
    let mut notes = Vec::new();
    if build_id.is_some() {
        let wanted = Wanted {
            build_id: build_id.as_deref(),
            release: release.as_deref(),
            banner: None,
        };
        let open = |debug| Program::from_kcore(Some(debug), core.clone(), options);
        if let Some(opened) = search_and_open(search, &wanted, &open, progress, &mut notes) {
            return Ok(opened.with_notes(notes));
        }
    }
    Ok(Opened {
        program: Program::from_kcore(None, core, options)?,
        origin: Origin::None,
        notes,
    })
}

/// Search for the vmlinux `wanted` describes and `open` the kernel with
/// it (a dump, /proc/kcore); what was skipped, and a file that would not
/// open, go to `notes`.
fn search_and_open(
    search: &Search,
    wanted: &Wanted<'_>,
    open: &dyn Fn(KernelDebugInfo) -> Result<Program>,
    progress: &mut dyn FnMut(debuginfod::Progress<'_>),
    notes: &mut Vec<String>,
) -> Option<Opened> {
    let outcome = search.vmlinux(wanted, progress);
    notes.extend(outcome.notes);
    let (path, origin) = outcome.found?;
    let opened = KernelDebugInfo::open(&path).and_then(open);
    match opened {
        Ok(program) => Some(Opened {
            program,
            origin,
            notes: Vec::new(),
        }),
        Err(e) => {
            notes.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

impl Opened {
    fn with_notes(self, notes: Vec<String>) -> Opened {
        Opened { notes, ..self }
    }
}

/// `NT_GNU_BUILD_ID` from the kernel's `.notes` in memory
/// (`__start_notes`..`__stop_notes`), where the program's symbols (the
/// vmlinux's or kallsyms) place it.
pub fn image_build_id(prog: &Program) -> Option<Vec<u8>> {
    let start = prog.symbol("__start_notes").ok()?;
    let stop = prog.symbol("__stop_notes").ok()?;
    let len = stop.get().checked_sub(start.get())?;
    if len == 0 || len > 64 * 1024 {
        return None;
    }
    let mut notes = vec![0u8; len as usize];
    prog.read(start, &mut notes).ok()?;
    gnu_build_id(&notes).map(<[u8]>::to_vec)
}

/// The `NT_GNU_BUILD_ID` descriptor in a blob of ELF notes (4-byte aligned,
/// little-endian).
pub fn gnu_build_id(mut notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align = |n: usize| n.checked_add(3).map(|n| n & !3);
    while notes.len() >= 12 {
        let word =
            |i: usize| u32::from_le_bytes([notes[i], notes[i + 1], notes[i + 2], notes[i + 3]]);
        let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
        let name_end = 12usize.checked_add(align(namesz)?)?;
        let desc_end = name_end.checked_add(align(descsz)?)?;
        let name = notes.get(12..12 + namesz)?;
        let desc = notes.get(name_end..name_end.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
            return Some(desc);
        }
        notes = notes.get(desc_end..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.resize(v.len().next_multiple_of(4), 0);
        v.extend_from_slice(desc);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    #[test]
    fn the_build_id_note_among_others() {
        // The kernel's .notes: Xen and Linux notes around the GNU one.
        let mut blob = note(b"Xen\0", 1, b"linux");
        blob.extend(note(b"Linux\0", 0x100, &[1, 2, 3]));
        blob.extend(note(b"GNU\0", 3, &[0xde, 0xad, 0xbe, 0xef, 0x01]));
        assert_eq!(
            gnu_build_id(&blob),
            Some(&[0xde, 0xad, 0xbe, 0xef, 0x01][..])
        );
        // Cut short, or absent: none, and no panic.
        for n in 0..blob.len() - 8 {
            let _ = gnu_build_id(&blob[..n]);
        }
        assert_eq!(gnu_build_id(&note(b"GNU\0", 1, &[1])), None);
        let mut huge = note(b"GNU\0", 3, &[1]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gnu_build_id(&huge), None);
    }
}
