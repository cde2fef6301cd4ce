//! Guest memory: the one trait every source implements.
//!
//! A [`MemorySource`] reads guest-physical memory (a dump file, a live
//! QEMU, GDB). Turning kernel virtual addresses into physical ones is the
//! architecture's ([`crate::arch::KernelSpace`]).

use crate::addr::PhysAddr;
use crate::Result;

/// A source of guest-physical memory. Reads either fill the whole buffer or
/// fail with [`crate::Error::Fault`] naming the first missing address:
/// memory a dump does not have is never returned as zeros.
pub trait MemorySource: Send + Sync {
    /// Read `buf.len()` bytes of physical memory at `addr`.
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()>;

    /// Read a little-endian u64.
    fn read_phys_u64(&self, addr: PhysAddr) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_phys(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// How this source reads memory, when there is a choice worth telling
    /// (a live QEMU: its process's RAM or the gdbstub); `None` for dumps.
    fn describe(&self) -> Option<String> {
        None
    }
}

impl<T: MemorySource + ?Sized> MemorySource for &T {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        (**self).read_phys(addr, buf)
    }
    fn describe(&self) -> Option<String> {
        (**self).describe()
    }
}

impl<T: MemorySource + ?Sized> MemorySource for std::sync::Arc<T> {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        (**self).read_phys(addr, buf)
    }
    fn describe(&self) -> Option<String> {
        (**self).describe()
    }
}

impl<T: MemorySource + ?Sized> MemorySource for Box<T> {
    fn read_phys(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<()> {
        (**self).read_phys(addr, buf)
    }
    fn describe(&self) -> Option<String> {
        (**self).describe()
    }
}
