//! What a target says about itself: the kernel's VMCOREINFO and each CPU's
//! registers (`NT_PRSTATUS`, QEMU's per-CPU state). Dumps carry them as ELF
//! notes (the same blob in ELF `PT_NOTE` segments and in the kdump
//! sub-header); a live QEMU's are made from its vCPUs' registers.

use std::collections::BTreeMap;

use crate::arch::x86_64::regs::{PrStatus, QemuCpuState};
use crate::bytes::le32;

/// `NT_PRSTATUS`: a CPU's general registers.
const NT_PRSTATUS: u32 = 1;

/// Everything the notes of a dump told us.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    /// The VMCOREINFO text, if the dump carries it.
    pub vmcoreinfo: Option<VmcoreInfo>,
    /// `NT_PRSTATUS` notes in file order.
    pub prstatus: Vec<PrStatus>,
    /// QEMU's per-CPU state notes in file order (CPU order).
    pub qemu_cpus: Vec<QemuCpuState>,
}

impl Notes {
    /// Parse a blob of ELF notes (4-byte aligned, little-endian). Notes that
    /// are cut short or malformed end the walk; what came before is kept.
    pub fn parse(blob: &[u8]) -> Notes {
        let mut notes = Notes::default();
        let mut pos = 0usize;
        while let (Some(namesz), Some(descsz), Some(ntype)) =
            (le32(blob, pos), le32(blob, pos + 4), le32(blob, pos + 8))
        {
            let (namesz, descsz) = (namesz as usize, descsz as usize);
            if namesz == 0 && descsz == 0 {
                break;
            }
            let name_at = pos + 12;
            let Some(desc_at) = name_at.checked_add(align4(namesz)) else {
                break;
            };
            let Some(end) = desc_at.checked_add(align4(descsz)) else {
                break;
            };
            let (Some(name), Some(desc)) = (
                blob.get(name_at..name_at + namesz),
                blob.get(desc_at..desc_at + descsz),
            ) else {
                break;
            };
            let name = name.strip_suffix(&[0]).unwrap_or(name);
            match (name, ntype) {
                (b"CORE", NT_PRSTATUS) => notes.prstatus.extend(PrStatus::parse(desc)),
                (b"QEMU", _) => notes.qemu_cpus.extend(QemuCpuState::parse(desc)),
                (b"VMCOREINFO", _) => notes.vmcoreinfo = Some(VmcoreInfo::parse(desc)),
                _ => {}
            }
            pos = end;
        }
        notes
    }
}

/// The kernel's VMCOREINFO: `KEY=VALUE` lines describing the dumped kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmcoreInfo {
    entries: BTreeMap<String, String>,
}

impl VmcoreInfo {
    /// Parse the text; lines without `=` are ignored, a trailing NUL is allowed.
    pub fn parse(text: &[u8]) -> VmcoreInfo {
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        let entries = String::from_utf8_lossy(text)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect();
        VmcoreInfo { entries }
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Every key and value, sorted by key.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `OSRELEASE`.
    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `SYMBOL(name)`: a run-time address, hexadecimal without `0x`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        parse_hex(self.get(&format!("SYMBOL({name})"))?)
    }

    /// `NUMBER(name)`: signed decimal, or hexadecimal with `0x`.
    pub fn number(&self, name: &str) -> Option<i64> {
        parse_signed(self.get(&format!("NUMBER({name})"))?)
    }

    /// `KERNELOFFSET`: the KASLR offset, hexadecimal without `0x`.
    pub fn kernel_offset(&self) -> Option<u64> {
        parse_hex(self.get("KERNELOFFSET")?)
    }

    /// `CRASHTIME`: present only in dumps of a kernel that crashed.
    pub fn crash_time(&self) -> Option<i64> {
        parse_signed(self.get("CRASHTIME")?)
    }

    /// `BUILD-ID` as bytes.
    pub fn build_id(&self) -> Option<Vec<u8>> {
        let hex = self.get("BUILD-ID")?;
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    }

    /// `PAGESIZE`.
    pub fn page_size(&self) -> Option<u64> {
        parse_signed(self.get("PAGESIZE")?).and_then(|v| u64::try_from(v).ok())
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

fn parse_signed(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = match digits.strip_prefix("0x") {
        // Hex values such as NUMBER(VMALLOC_START)=0xffffc90000000000 are
        // addresses: keep their bits (two's complement).
        Some(hex) => u64::from_str_radix(hex, 16).ok()? as i64,
        None => digits.parse::<i64>().ok()?,
    };
    Some(if neg { -v } else { v })
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], ntype: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&ntype.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn parses_vmcoreinfo_with_the_right_base_per_key() {
        let text = b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff82a0a000\nNUMBER(phys_base)=-2097152\nNUMBER(VMALLOC_START)=0xffffc90000000000\nKERNELOFFSET=1e000000\nBUILD-ID=0aff\n";
        let blob = note(b"VMCOREINFO", 0, text);
        let vi = Notes::parse(&blob).vmcoreinfo.expect("vmcoreinfo");
        assert_eq!(vi.osrelease(), Some("6.1.0"));
        assert_eq!(vi.page_size(), Some(4096));
        assert_eq!(vi.symbol("init_top_pgt"), Some(0xffff_ffff_82a0_a000));
        assert_eq!(vi.number("phys_base"), Some(-2097152));
        assert_eq!(
            vi.number("VMALLOC_START").map(|v| v as u64),
            Some(0xffff_c900_0000_0000)
        );
        assert_eq!(vi.kernel_offset(), Some(0x1e00_0000));
        assert_eq!(vi.build_id(), Some(vec![0x0a, 0xff]));
        assert_eq!(vi.crash_time(), None);
    }

    #[test]
    fn parses_prstatus_and_qemu_state() {
        let mut pr = vec![0u8; 336];
        pr[32..36].copy_from_slice(&7i32.to_le_bytes());
        pr[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffff_ffff_8100_1234u64.to_le_bytes());
        pr[112 + 19 * 8..112 + 20 * 8].copy_from_slice(&0xffff_c900_0000_0ff0u64.to_le_bytes());
        let mut qemu = vec![0u8; 432];
        qemu[416..424].copy_from_slice(&0x1234_5000u64.to_le_bytes());
        qemu[384..392].copy_from_slice(&0xffff_fe00_0000_0000u64.to_le_bytes());
        let mut blob = note(b"CORE", 1, &pr);
        blob.extend(note(b"QEMU", 0, &qemu));
        let notes = Notes::parse(&blob);
        assert_eq!(notes.prstatus.len(), 1);
        assert_eq!(notes.prstatus[0].pid, 7);
        assert_eq!(notes.prstatus[0].regs.rip, 0xffff_ffff_8100_1234);
        assert_eq!(notes.prstatus[0].regs.rsp, 0xffff_c900_0000_0ff0);
        assert_eq!(notes.qemu_cpus[0].cr3, 0x1234_5000);
        assert_eq!(notes.qemu_cpus[0].idt_base, 0xffff_fe00_0000_0000);
    }

    #[test]
    fn truncated_or_absurd_notes_end_the_walk_without_panic() {
        let blob = note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\n");
        for cut in 0..blob.len() {
            let _ = Notes::parse(&blob[..cut]);
        }
        let mut huge = blob.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Notes::parse(&huge).vmcoreinfo.is_none());
    }
}
