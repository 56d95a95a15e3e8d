//! JSON Pointers (RFC 6901): the paths a `Diff` reports and a `Patch` is written at.

/// Appends one reference token to a pointer: `/` and the key, `~` written `~0` and `/` written
/// `~1`, so that `example.com/key` stays one token.
pub(crate) fn push_token(pointer: &mut String, key: &str) {
    pointer.push('/');
    if !key.contains(['~', '/']) {
        pointer.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// The reference tokens of a pointer, unescaped: `"/metadata/labels/example.com~1tier"` is
/// `["metadata", "labels", "example.com/tier"]`, `""` (the whole document) none.
pub(crate) fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("a JSON Pointer starts with `/`, as in `/{pointer}`"));
    };
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, String> {
    if !token.contains('~') {
        return Ok(token.to_owned());
    }
    let mut unescaped = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            unescaped.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => unescaped.push('~'),
            Some('1') => unescaped.push('/'),
            _ => {
                return Err(format!(
                    "in `{token}`, `~` is not followed by `0` or `1`: write `~0` for `~`, `~1` for `/`"
                ));
            }
        }
    }
    Ok(unescaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(keys: &[&str]) -> String {
        let mut pointer = String::new();
        for key in keys {
            push_token(&mut pointer, key);
        }
        pointer
    }

    #[test]
    fn tokens_are_escaped_as_rfc_6901_says() {
        assert_eq!(pointer(&["spec", "size"]), "/spec/size");
        assert_eq!(pointer(&["a/b"]), "/a~1b");
        assert_eq!(pointer(&["m~n"]), "/m~0n");
        // `~1` written literally must not read back as `/`: `~` is escaped first.
        assert_eq!(pointer(&["~1"]), "/~01");
        assert_eq!(pointer(&[""]), "/");
        assert_eq!(pointer(&[]), "");
    }

    #[test]
    fn tokens_read_back_unescaped() {
        // The examples of RFC 6901 section 5.
        for (text, expected) in [
            ("", vec![]),
            ("/foo", vec!["foo"]),
            ("/foo/0", vec!["foo", "0"]),
            ("/", vec![""]),
            ("/a~1b", vec!["a/b"]),
            ("/c%d", vec!["c%d"]),
            ("/e^f", vec!["e^f"]),
            ("/g|h", vec!["g|h"]),
            ("/i\\j", vec!["i\\j"]),
            ("/k\"l", vec!["k\"l"]),
            ("/ ", vec![" "]),
            ("/m~0n", vec!["m~n"]),
            ("/~01", vec!["~1"]),
        ] {
            assert_eq!(tokens(text).unwrap(), expected, "{text}");
        }
        for keys in [&["example.com/key", "~", "a~1/b"][..], &["", ""]] {
            assert_eq!(tokens(&pointer(keys)).unwrap(), keys);
        }
    }

    #[test]
    fn malformed_pointers_are_rejected() {
        assert_eq!(
            tokens("status/phase").unwrap_err(),
            "a JSON Pointer starts with `/`, as in `/status/phase`"
        );
        assert_eq!(
            tokens("/a~2").unwrap_err(),
            "in `a~2`, `~` is not followed by `0` or `1`: write `~0` for `~`, `~1` for `/`"
        );
        assert!(tokens("/a~").is_err());
    }
}
