//! x86_64: registers, 4- and 5-level paging, KASLR, ORC, the switch frame.

pub mod kaslr;
pub mod orc;
pub mod paging;
pub mod regs;
pub mod switch;
