//! Text from outside (a dump, a peer) made safe to show.

/// At most `max` characters of `s`, quoted and escaped as Rust's `{:?}`
/// does, with the length of what was left out: for error messages that
/// quote their input.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut chars = s.char_indices();
    match chars.nth(max) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes in all)", &s[..cut], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_escaped_and_bounded() {
        assert_eq!(excerpt("ab\u{1b}c", 10), "\"ab\\u{1b}c\"");
        let long = "y".repeat(1000);
        let e = excerpt(&long, 5);
        assert!(e.starts_with("\"yyyyy\"... (1000 bytes"), "{e}");
    }
}
