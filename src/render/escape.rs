//! Strings from a dump, made safe for a terminal.
//!
//! A task's `comm`, a module name, the release or a log line are whatever
//! the dump's bytes say: an ESC starts a terminal control sequence (`\e]0;…\a`
//! retitles the window), a CR or a newline forges a line of a listing.
//! Human output passes every such string through [`escape`] once, where it is
//! printed; JSON escapes them itself.
//!
//! The rules are those of the kernel's `/dev/kmsg` (`\xNN` for a control
//! byte) and of `ps` (`?` for what is not text):
//!
//! - a control character (C0, DEL, C1) becomes `\xNN`, one per byte of its
//!   UTF-8 encoding (`\x1b`; U+009B, a one-character CSI for some terminals,
//!   becomes `\xc2\x9b`);
//! - bytes that were not UTF-8 were already replaced by U+FFFD when the string
//!   was read (`String::from_utf8_lossy`); each becomes `?`;
//! - a tab stays: it moves the cursor right and can neither erase nor forge,
//!   and the kernel's own log has them (the guest's syslog, which the
//!   fixtures' `dmesg` must equal byte for byte);
//! - everything else, backslashes included, is printed as it is, so a clean
//!   string is printed unchanged (what `lx-ps`, `/proc/modules` and `dmesg`
//!   show for it).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t') || c == char::REPLACEMENT_CHARACTER
}

/// `s` with its control characters as `\xNN` and its undecodable bytes as
/// `?`; borrowed when there is nothing to escape (the usual case).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == char::REPLACEMENT_CHARACTER {
            out.push('?');
        } else if unsafe_char(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strings_are_borrowed_unchanged() {
        for s in [
            "swapper/0",
            "kworker/u4:1-events",
            "a\tb",
            "back\\slash",
            "é",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(t) if t == s), "{s:?}");
        }
    }

    #[test]
    fn control_bytes_and_bad_utf8_are_escaped() {
        assert_eq!(escape("a\nPID 1 fake\r"), "a\\x0aPID 1 fake\\x0d");
        assert_eq!(escape("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
        assert_eq!(escape("\x7f\u{9b}"), "\\x7f\\xc2\\x9b");
        assert_eq!(escape(&String::from_utf8_lossy(b"a\xffb")), "a?b");
        assert_eq!(escape("\0"), "\\x00");
    }
}
