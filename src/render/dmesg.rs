//! The kernel log as text: like `dmesg`, like the kernel's syslog
//! (`<prio>` and caller id), or exactly like the kernel's `lx-dmesg`.

use std::io::{self, Write};

use super::escape;
use crate::kernel::printk::{Entry, Record};

/// How to print the log.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmesgOptions {
    /// `<prio>` before each line (facility * 8 + level), like `dmesg -r`
    /// and the kernel's syslog.
    pub raw: bool,
    /// `[  T123]` (or `[   C1]`) after the timestamp, like a kernel built
    /// with `CONFIG_PRINTK_CALLER`.
    pub caller: bool,
}

/// `[%5lu.%06lu]`: the kernel's timestamp, truncated to microseconds.
fn time(ts_nsec: u64) -> String {
    format!(
        "[{:5}.{:06}]",
        ts_nsec / 1_000_000_000,
        ts_nsec % 1_000_000_000 / 1000
    )
}

/// Every line of a record gets the prefix, as the kernel's
/// `record_print_text()` does; a record without text is one empty line.
pub fn dmesg(
    out: &mut (impl Write + ?Sized),
    entries: &[Entry],
    opts: DmesgOptions,
) -> io::Result<()> {
    for e in entries {
        match e {
            Entry::Record(r) => record(out, r, opts)?,
            Entry::Gap(g) => writeln!(
                out,
                "** {} printk record{} lost: {} **",
                g.records,
                if g.records == 1 { "" } else { "s" },
                g.reason
            )?,
        }
    }
    Ok(())
}

fn record(out: &mut (impl Write + ?Sized), r: &Record, opts: DmesgOptions) -> io::Result<()> {
    let mut prefix = String::new();
    if opts.raw {
        prefix.push_str(&format!(
            "<{}>",
            u32::from(r.facility) << 3 | u32::from(r.level)
        ));
    }
    prefix.push_str(&time(r.ts_nsec));
    if opts.caller && !r.caller.is_empty() {
        prefix.push_str(&format!("[{:>6}]", escape(&r.caller)));
    }
    for line in r.text.split('\n') {
        writeln!(out, "{prefix} {}", escape(line))?;
    }
    Ok(())
}

/// Python's `str.splitlines()`: the line breaks the kernel's `lx-dmesg` splits on.
fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let brk = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if brk {
            lines.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// Exactly what the kernel's `lx-dmesg` prints: `[%12.6f] line`, the
/// seconds as a float, each line of each record.
pub fn lx_dmesg(out: &mut (impl Write + ?Sized), entries: &[Entry]) -> io::Result<()> {
    for e in entries {
        let Entry::Record(r) = e else { continue };
        let secs = r.ts_nsec as f64 / 1_000_000_000.0;
        for line in splitlines(&r.text) {
            writeln!(out, "[{secs:12.6}] {}", escape(line))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_like_python() {
        assert_eq!(splitlines("a\nb\r\nc\rd"), ["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\n"), ["a"]);
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("\n\nx"), ["", "", "x"]);
    }

    #[test]
    fn timestamps_truncate_like_the_kernel() {
        assert_eq!(time(1_028_139_999), "[    1.028139]");
        assert_eq!(time(123_456_000_000_000), "[123456.000000]");
    }
}
