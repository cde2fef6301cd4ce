//! Typed addresses: a physical address is never a virtual one.

use std::fmt;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The address as a plain number.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The address `n` bytes further on, or `None` on overflow.
            pub const fn checked_add(self, n: u64) -> Option<Self> {
                match self.0.checked_add(n) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        /// Serialised as a `"0x…"` string, the JSON contract for addresses.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A guest-physical address.
    PhysAddr
);
address_type!(
    /// A kernel virtual address as the running kernel saw it (after KASLR).
    VirtAddr
);
address_type!(
    /// A virtual address as the vmlinux file records it (before KASLR).
    LinkAddr
);

impl LinkAddr {
    /// Where this link-time address lives in a kernel relocated by `kaslr_offset`.
    pub const fn relocate(self, kaslr_offset: u64) -> VirtAddr {
        VirtAddr(self.0.wrapping_add(kaslr_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocate_adds_the_offset() {
        let link = LinkAddr(0xffff_ffff_8100_0000);
        assert_eq!(link.relocate(0x1e00_0000), VirtAddr(0xffff_ffff_9f00_0000));
    }

    #[test]
    fn formats_as_hex() {
        assert_eq!(PhysAddr(0x1000).to_string(), "0x1000");
        assert_eq!(format!("{:?}", VirtAddr(0x10)), "VirtAddr(0x10)");
        assert_eq!(PhysAddr(u64::MAX).checked_add(1), None);
    }
}
