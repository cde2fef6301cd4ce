//! DWARF call frame information (`.debug_frame`): how to find a function's
//! caller, for the code the kernel's ORC tables leave undefined (functions
//! marked `STACK_FRAME_NON_STANDARD`, such as `__crash_kexec`, which
//! saves the crash registers with inline assembly).

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, LittleEndian, RegisterRule, UnwindContext, UnwindSection,
    X86_64,
};

use super::{KernelDebugInfo, R};
use crate::addr::LinkAddr;

/// The rule for one code address, in the terms the kernel's unwinder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfiRow {
    /// The CFA is this register (`CfiBase`) plus `cfa_offset`.
    pub cfa_base: CfiBase,
    /// See `cfa_base`.
    pub cfa_offset: i64,
    /// The return address is saved at CFA + this.
    pub ra_offset: i64,
    /// The caller's rbp is saved at CFA + this (`None`: rbp is unchanged).
    pub bp_offset: Option<i64>,
}

/// The register a CFA is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfiBase {
    /// rsp.
    Sp,
    /// rbp.
    Bp,
}

/// `.debug_frame` with an index of its FDEs by address.
pub struct Cfi<'a> {
    frame: DebugFrame<R<'a>>,
    /// (start, end, FDE offset), sorted by start.
    index: Vec<(u64, u64, usize)>,
}

impl KernelDebugInfo {
    /// The image's `.debug_frame`, indexed; `None` without one.
    pub fn cfi(&self) -> Option<Cfi<'_>> {
        let (_, data) = self.section(".debug_frame")?;
        let mut frame = DebugFrame::new(data, LittleEndian);
        frame.set_address_size(8);
        let bases = BaseAddresses::default();
        let mut index = Vec::new();
        let mut entries = frame.entries(&bases);
        // A corrupt entry ends the index; what was read before it stays.
        while let Ok(Some(entry)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = entry {
                let Ok(fde) = partial.parse(DebugFrame::cie_from_offset) else {
                    continue;
                };
                let start = fde.initial_address();
                let end = start.saturating_add(fde.len());
                index.push((start, end, fde.offset()));
            }
            if index.len() > 1 << 22 {
                break;
            }
        }
        index.sort_unstable();
        Some(Cfi { frame, index })
    }
}

impl Cfi<'_> {
    /// Number of FDEs indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no FDE was found.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The rule at a link-time code address, when it is one the kernel's
    /// unwinder can follow (CFA from rsp or rbp, return address and rbp
    /// saved on the stack).
    pub fn row(&self, addr: LinkAddr) -> Option<CfiRow> {
        let addr = addr.get();
        let pos = self.index.partition_point(|e| e.0 <= addr);
        let &(start, end, off) = self.index.get(pos.checked_sub(1)?)?;
        if !(start <= addr && addr < end) {
            return None;
        }
        let bases = BaseAddresses::default();
        let fde = self
            .frame
            .fde_from_offset(
                &bases,
                gimli::DebugFrameOffset(off),
                DebugFrame::cie_from_offset,
            )
            .ok()?;
        let mut ctx = Box::new(UnwindContext::new());
        let row = fde
            .unwind_info_for_address(&self.frame, &bases, &mut ctx, addr)
            .ok()?;
        let (cfa_base, cfa_offset) = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => {
                let base = match *register {
                    X86_64::RSP => CfiBase::Sp,
                    X86_64::RBP => CfiBase::Bp,
                    _ => return None,
                };
                (base, *offset)
            }
            CfaRule::Expression(_) => return None,
        };
        let ra_offset = match row.register(X86_64::RA) {
            Some(RegisterRule::Offset(o)) => o,
            _ => return None,
        };
        let bp_offset = match row.register(X86_64::RBP) {
            Some(RegisterRule::Offset(o)) => Some(o),
            _ => None,
        };
        Some(CfiRow {
            cfa_base,
            cfa_offset,
            ra_offset,
            bp_offset,
        })
    }
}
