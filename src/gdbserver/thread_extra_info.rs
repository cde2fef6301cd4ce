//! `qThreadExtraInfo`: what `info threads` shows in parentheses after each
//! thread: `pid comm` for a task (`pid [comm]` for a kernel thread, `, on CPU N`
//! for a task that was running), `CPU N: pid comm` for a CPU.

use gdbstub::common::Tid;
use gdbstub::target::ext::thread_extra_info::ThreadExtraInfo;

use super::Session;

impl ThreadExtraInfo for Session<'_, '_> {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let label = self.snap.thread(tid).map_or("", |t| t.label.as_str());
        Ok(copy_to_buf(label.as_bytes(), buf))
    }
}

/// Copy as much of `src` as fits; returns how much was copied.
fn copy_to_buf(src: &[u8], buf: &mut [u8]) -> usize {
    let n = src.len().min(buf.len());
    buf[..n].copy_from_slice(&src[..n]);
    n
}

#[cfg(test)]
mod tests {
    use super::copy_to_buf;

    #[test]
    fn long_labels_are_cut_to_the_buffer() {
        let mut buf = [0u8; 4];
        assert_eq!(copy_to_buf(b"123 kpw-alpha", &mut buf), 4);
        assert_eq!(&buf, b"123 ");
        let mut big = [0u8; 32];
        assert_eq!(copy_to_buf(b"1 init", &mut big), 6);
    }
}
