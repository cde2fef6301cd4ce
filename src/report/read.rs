//! `kpeek read`: raw kernel memory.

use serde::Serialize;

use super::Report;
use crate::addr::{PhysAddr, VirtAddr};
use crate::kernel::Program;
use crate::memory::MemorySource;
use crate::Result;

/// Bytes of memory.
#[derive(Clone, Debug, Serialize)]
pub struct Bytes {
    /// Where they start, `"0x…"`.
    pub address: String,
    /// `virtual` (a kernel virtual address) or `physical`.
    pub space: &'static str,
    /// The bytes as lowercase hex, two digits each.
    pub data: String,
    /// The bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// Read `len` bytes at `addr`, a kernel virtual address or, with `phys`,
/// a physical one.
pub fn read(prog: &Program, addr: u64, len: usize, phys: bool) -> Result<Report<Bytes>> {
    let mut bytes = vec![0u8; len];
    if phys {
        prog.memory.read_phys(PhysAddr(addr), &mut bytes)?;
    } else {
        prog.read(VirtAddr(addr), &mut bytes)?;
    }
    Ok(Report::complete(Bytes {
        address: format!("{addr:#x}"),
        space: if phys { "physical" } else { "virtual" },
        data: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        bytes,
    }))
}
