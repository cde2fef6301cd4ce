//! The running kernel through `/proc/kcore`: an ELF core file of kernel
//! *virtual* memory that the kernel builds as it is read.
//!
//! Its `PT_LOAD`s name kernel virtual ranges (`p_vaddr`): the direct map
//! (`KCORE_RAM`, with `p_paddr`), the kernel image (`KCORE_TEXT`, at the
//! run-time `_text`: KASLR, read off), vmalloc and modules, the vmemmap.
//! Its notes carry VMCOREINFO (Linux 4.19 and later) and an empty
//! `NT_PRSTATUS`: a running system has no saved CPU registers.
//!
//! The file cannot be mapped and reports a size of the whole address
//! space, so every read is a `pread` at the segment's file offset. Memory
//! changes under the reader: callers walk lists with the same checks as
//! in dumps.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::addr::PhysAddr;
use crate::bytes::{le32, le64};
use crate::memory::MemorySource;
use crate::notes::Notes;
use crate::{Error, Result};

/// Where `/proc/kcore` is.
pub const DEFAULT_PATH: &str = "/proc/kcore";

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// `/proc/kcore` has a few dozen program headers; more is not a kcore.
const MAX_PHDRS: usize = 1 << 16;
/// Its notes are a few KiB (VMCOREINFO is the largest).
const MAX_NOTES: u64 = 1 << 20;
/// x86_64's `__START_KERNEL_map`: the kernel image lies in the GiB above.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// One `PT_LOAD`: kernel virtual `[vaddr, vaddr + len)` at file `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    vaddr: u64,
    len: u64,
    offset: u64,
}

/// `/proc/kcore`, opened.
pub struct Kcore {
    path: PathBuf,
    file: File,
    /// Sorted by `vaddr`; the kernel does not overlap them.
    segments: Vec<Segment>,
    notes: Notes,
    /// Run-time `_text`: the lowest segment in the kernel-image window.
    text: Option<u64>,
}

impl std::fmt::Debug for Kcore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kcore")
            .field("path", &self.path)
            .field("segments", &self.segments.len())
            .field("text", &self.text)
            .finish()
    }
}

impl Kcore {
    /// Open `/proc/kcore` (or a file in its format at `path`), saying why
    /// not in terms of the machine: absent, not root, locked down.
    pub fn open(path: &Path) -> Result<Kcore> {
        let file = File::open(path).map_err(|e| open_error(path, e))?;
        Kcore::parse(path, file)
    }

    fn parse(path: &Path, file: File) -> Result<Kcore> {
        let bad = |what: String| Error::bad_file(path, format!("not a kernel core: {what}"));
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut head = [0u8; 64];
        read_exact_at(&file, &mut head, 0).map_err(io)?;
        if &head[..4] != b"\x7fELF" {
            return Err(bad("no ELF magic".into()));
        }
        if head[4] != 2 || head[5] != 1 {
            return Err(bad(
                "not a 64-bit little-endian ELF (only x86_64 is supported)".into(),
            ));
        }
        let e_type = u16::from_le_bytes([head[16], head[17]]);
        let e_machine = u16::from_le_bytes([head[18], head[19]]);
        if e_type != 4 {
            return Err(bad(format!("e_type {e_type} is not ET_CORE")));
        }
        if e_machine != 62 {
            return Err(bad(format!("e_machine {e_machine} is not x86_64 (62)")));
        }
        let e_phoff = le64(&head, 32).unwrap_or(0);
        let e_phentsize = u16::from_le_bytes([head[54], head[55]]);
        let phnum = usize::from(u16::from_le_bytes([head[56], head[57]]));
        if e_phentsize != 56 {
            return Err(bad(format!("e_phentsize {e_phentsize}, expected 56")));
        }
        if phnum == 0 || phnum > MAX_PHDRS {
            return Err(bad(format!("{phnum} program headers")));
        }
        let mut table = vec![0u8; phnum * 56];
        read_exact_at(&file, &mut table, e_phoff).map_err(io)?;
        let mut segments = Vec::new();
        let mut note_blob = Vec::new();
        for ph in table.chunks_exact(56) {
            let p_type = le32(ph, 0).unwrap_or(0);
            let (offset, vaddr, filesz) = (
                le64(ph, 8).unwrap_or(0),
                le64(ph, 16).unwrap_or(0),
                le64(ph, 32).unwrap_or(0),
            );
            match p_type {
                PT_NOTE if filesz <= MAX_NOTES => {
                    let mut blob = vec![0u8; filesz as usize];
                    read_exact_at(&file, &mut blob, offset).map_err(io)?;
                    note_blob.extend_from_slice(&blob);
                    while note_blob.len() % 4 != 0 {
                        note_blob.push(0);
                    }
                }
                PT_LOAD if filesz > 0 && vaddr.checked_add(filesz).is_some() => {
                    segments.push(Segment {
                        vaddr,
                        len: filesz,
                        offset,
                    });
                }
                _ => {}
            }
        }
        if segments.is_empty() {
            return Err(bad("no PT_LOAD segments".into()));
        }
        segments.sort_by_key(|s| s.vaddr);
        let mut notes = Notes::parse(&note_blob);
        // kcore's NT_PRSTATUS is all zeros: no CPU's registers are known.
        notes.prstatus.clear();
        notes.qemu_cpus.clear();
        let text = segments
            .iter()
            .map(|s| s.vaddr)
            .find(|v| (START_KERNEL_MAP..START_KERNEL_MAP + (1 << 30)).contains(v));
        Ok(Kcore {
            path: path.to_owned(),
            file,
            segments,
            notes,
            text,
        })
    }

    /// Where it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its notes: VMCOREINFO; never CPU registers.
    pub fn notes(&self) -> &Notes {
        &self.notes
    }

    /// The run-time address of `_text` (the kernel-image segment).
    pub fn text(&self) -> Option<u64> {
        self.text
    }

    /// The segment holding `addr`, if any.
    fn segment(&self, addr: u64) -> Option<Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= addr);
        i.checked_sub(1)
            .map(|i| self.segments[i])
            .filter(|s| addr - s.vaddr < s.len)
    }
}

/// Reads kernel **virtual** memory: the address is a kernel virtual
/// address (as GDB's memory is, see [`crate::kernel::Program::from_virtual`]).
impl MemorySource for Kcore {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.0.wrapping_add(done as u64);
            let Some(seg) = self.segment(at) else {
                return Err(Error::fault(
                    "kernel virtual",
                    at,
                    buf.len() - done,
                    "not in any segment of /proc/kcore",
                ));
            };
            let n = ((seg.len - (at - seg.vaddr)) as usize).min(buf.len() - done);
            read_exact_at(
                &self.file,
                &mut buf[done..done + n],
                seg.offset + (at - seg.vaddr),
            )
            .map_err(|e| {
                Error::fault(
                    "kernel virtual",
                    at,
                    n,
                    format!("reading {}: {e}", self.path.display()),
                )
            })?;
            done += n;
        }
        Ok(())
    }
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why `/proc/kcore` did not open, in the machine's terms.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    let why = match e.kind() {
        ErrorKind::NotFound if path == Path::new(DEFAULT_PATH) => Some(
            "no such file: this kernel has no /proc/kcore (built without CONFIG_PROC_KCORE), \
             or /proc is not mounted"
                .to_owned(),
        ),
        ErrorKind::PermissionDenied => Some(match lockdown() {
            Some(level) if level != "none" => format!(
                "permission denied: the kernel is locked down ({level}), which forbids \
                 reading /proc/kcore even as root (/sys/kernel/security/lockdown)"
            ),
            _ if !is_root() => "permission denied: reading the running kernel needs root \
                 (CAP_SYS_RAWIO): run kpeek with sudo"
                .to_owned(),
            _ => "permission denied (kernel lockdown, or a security module such as SELinux, \
                  forbids it)"
                .to_owned(),
        }),
        _ => None,
    };
    match why {
        Some(what) => Error::bad_file(path, what),
        None => Error::Io {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// The active lockdown level (`none`, `integrity`, `confidentiality`):
/// the word in brackets of `/sys/kernel/security/lockdown`.
fn lockdown() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_owned())
}

fn is_root() -> bool {
    // The owner of a file this process just created would do too; /proc
    // says it without side effects.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kcore-shaped file: an ELF header, `phdrs` and their bytes.
    fn core_file(segments: &[(u64, &[u8])]) -> (tempfile::TempPath, Vec<u8>) {
        let phnum = segments.len();
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&4u16.to_le_bytes());
        out[18..20].copy_from_slice(&62u16.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut data_at = 64 + 56 * phnum as u64;
        let mut data = Vec::new();
        for (vaddr, bytes) in segments {
            let mut ph = vec![0u8; 56];
            ph[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
            ph[8..16].copy_from_slice(&data_at.to_le_bytes());
            ph[16..24].copy_from_slice(&vaddr.to_le_bytes());
            ph[32..40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            ph[40..48].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&ph);
            data.extend_from_slice(bytes);
            data_at += bytes.len() as u64;
        }
        out.extend_from_slice(&data);
        let path = tempfile::NamedTempFile::new()
            .expect("temp")
            .into_temp_path();
        std::fs::write(&path, &out).expect("write");
        (path, out)
    }

    #[test]
    fn reads_virtual_addresses_across_segments_and_faults_between_them() {
        let text = 0xffff_ffff_9a00_0000u64;
        let (path, _) = core_file(&[
            (0xffff_8880_0000_0000, b"direct map bytes"),
            (text, b"kernel text here"),
        ]);
        let core = Kcore::open(&path).expect("open");
        assert_eq!(core.text(), Some(text));
        let mut buf = [0u8; 6];
        core.read_phys(PhysAddr(text + 7), &mut buf).expect("read");
        assert_eq!(&buf, b"text h");
        let err = core
            .read_phys(PhysAddr(text + 12), &mut [0u8; 8])
            .expect_err("past the segment");
        assert_eq!(err.code(), "fault", "{err}");
        assert!(err.to_string().contains("/proc/kcore"), "{err}");
    }

    #[test]
    fn what_is_not_a_kernel_core_is_refused_with_the_reason() {
        let (path, mut bytes) = core_file(&[(0xffff_ffff_8100_0000, b"x")]);
        bytes[18] = 183; // EM_AARCH64
        std::fs::write(&path, &bytes).expect("write");
        let err = Kcore::open(&path).expect_err("aarch64");
        assert!(err.to_string().contains("not x86_64"), "{err}");
        std::fs::write(&path, b"hello").expect("write");
        let err = Kcore::open(&path).expect_err("short");
        assert_eq!(err.code(), "io", "{err}");
    }

    #[test]
    fn a_missing_proc_kcore_names_the_kernel_option() {
        let err = open_error(
            Path::new(DEFAULT_PATH),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(err.to_string().contains("CONFIG_PROC_KCORE"), "{err}");
    }
}
