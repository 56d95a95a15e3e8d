//! A resource's identity as the `handler` span shows it: unquoted, with control characters
//! escaped.
//!
//! Names and namespaces come from the watch stream, which is input: a name holding `\n` would
//! otherwise start a forged line in text logs, and one holding ESC would drive the reader's
//! terminal. The span records them with `Display` (a `str`'s `Debug` is quoted, and several times
//! dearer to write), which formatters print as they are; this `Display` escapes what must not be
//! printed raw, so every formatter, ours or a user's, gets the safe text.

use std::fmt;

/// Displays a string as it is, except that control characters (C0, DEL, C1), the Unicode line
/// and paragraph separators, the bidirectional controls and the backslash are written as
/// `char::escape_debug` writes them (`\n`, `\u{1b}`, `\\`). Escaping the backslash keeps the
/// text reversible ([`unescape`]) and unambiguous: a `\n` in it is always an escaped newline.
#[derive(Clone, Copy)]
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names are DNS labels in practice: one scan of their bytes, one write.
        if self
            .0
            .bytes()
            .all(|byte| (b' '..=b'~').contains(&byte) && byte != b'\\')
        {
            return f.write_str(self.0);
        }
        let mut plain = 0;
        for (at, c) in self.0.char_indices() {
            if needs_escape(c) {
                f.write_str(&self.0[plain..at])?;
                for escaped in c.escape_debug() {
                    fmt::Write::write_char(f, escaped)?;
                }
                plain = at + c.len_utf8();
            }
        }
        f.write_str(&self.0[plain..])
    }
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// The text [`Escaped`] displayed, back as it was: for JSON logs, whose encoding makes any
/// string safe, and which should carry the name itself. Text that `Escaped` cannot have written
/// is returned as it is.
pub(crate) fn unescape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let (c, len) = match escape.as_bytes().get(1) {
            Some(b'\\') => (Some('\\'), 2),
            Some(b'n') => (Some('\n'), 2),
            Some(b'r') => (Some('\r'), 2),
            Some(b't') => (Some('\t'), 2),
            Some(b'0') => (Some('\0'), 2),
            Some(b'u') => match escape.find('}') {
                Some(end) if escape.get(2..3) == Some("{") => (
                    u32::from_str_radix(&escape[3..end], 16).ok().and_then(char::from_u32),
                    end + 1,
                ),
                _ => (None, 1),
            },
            _ => (None, 1),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&escape[..len]),
        }
        rest = &escape[len..];
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_written_unchanged() {
        for name in [
            "kopf-example-1",
            "default",
            "a.b_c",
            "ünïcode",
            "with \"quotes\" and 'apostrophes'",
            "",
        ] {
            assert_eq!(Escaped(name).to_string(), name);
            assert_eq!(unescape(name), name);
        }
    }

    #[test]
    fn controls_and_backslashes_are_escaped_and_come_back() {
        let cases = [
            (
                "evil\n2026-01-01 ERROR memo: FORGED",
                r"evil\n2026-01-01 ERROR memo: FORGED",
            ),
            ("\u{1b}[31mred", r"\u{1b}[31mred"),
            ("a\r\tb\0", r"a\r\tb\0"),
            ("c1\u{85}\u{9b}31m del\u{7f}", r"c1\u{85}\u{9b}31m del\u{7f}"),
            ("rtl\u{202e}txt.exe\u{2028}", r"rtl\u{202e}txt.exe\u{2028}"),
            (r"back\slash\n", r"back\\slash\\n"),
            ("ünï\ncode", r"ünï\ncode"),
        ];
        for (raw, shown) in cases {
            let escaped = Escaped(raw).to_string();
            assert_eq!(escaped, shown);
            assert!(!escaped.chars().any(char::is_control), "{escaped:?}");
            assert_eq!(unescape(&escaped), raw);
        }
    }

    #[test]
    fn text_it_cannot_have_written_is_left_as_it_is() {
        for text in [r"end\", r"\q", r"\u", r"\u{", r"\u{zz}", r"\u{d800}"] {
            assert_eq!(unescape(text), text);
        }
    }
}
