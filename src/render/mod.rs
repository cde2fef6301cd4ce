//! Human output: text renderings of the library's data.
//!
//! Renderers write to a `&mut impl std::io::Write` they are handed; they
//! never print on their own.

pub mod bt;
pub mod cpus;
pub mod dmesg;
pub mod escape;
pub mod hung;
pub mod info;
pub mod lsmod;
pub mod pahole;
pub mod ps;

pub use escape::escape;
