//! Making untrusted text safe for a terminal.

/// Escapes control characters (ANSI escape sequences in a TXT record must not
/// reach the terminal) and truncates to `max` characters.
pub fn terminal_safe(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_controls() {
        assert_eq!(
            super::terminal_safe("a\x1b[31mb\n", 100),
            "a\\u{1b}[31mb\\n"
        );
        assert_eq!(super::terminal_safe("abcdef", 3), "abc…");
    }
}
