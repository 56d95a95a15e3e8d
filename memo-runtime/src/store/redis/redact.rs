//! Redis URLs as they may be shown: in logs, errors, `--help` and the metrics' `store` label.

/// Query parameters that carry a secret in some form of Redis URL (`redis+unix:///s?pass=…`).
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("pass") || name.contains("secret") || name.contains("token")
}

/// `url` with every password it holds replaced by `***`: the `user:password@` part of any URL,
/// and `pass=`/`password=` (or any parameter whose name says secret) in its query. A text that
/// does not parse as a URL is shown only up to its scheme when it might hold a secret (it has an
/// `@`, a `?` or a `pass`), as is otherwise.
pub(crate) fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let lower = url.to_ascii_lowercase();
        if url.contains('@') || url.contains('?') || lower.contains("pass") {
            return match url.find("://") {
                Some(scheme) => format!("{}://***", &url[..scheme]),
                None => "***".to_owned(),
            };
        }
        return url.to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return format!("{}://***", parsed.scheme());
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_parameter(&name) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `***` is kept readable where the URL syntax would escape it.
    parsed.as_str().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_hidden_in_every_form() {
        let cases = [
            ("redis://:SECRET@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://user:SECRET@host:6379/", "redis://user:***@host:6379/"),
            ("rediss://:SECRET@host/", "rediss://:***@host/"),
            ("valkey://u:SECRET@host/", "valkey://u:***@host/"),
            ("redis://:S%40CRET@host/", "redis://:***@host/"),
            (
                "redis+unix:///run/r.sock?pass=SECRET",
                "redis+unix:///run/r.sock?pass=***",
            ),
            (
                "unix:///run/r.sock?db=2&user=me&pass=SECRET",
                "unix:///run/r.sock?db=2&user=me&pass=***",
            ),
            (
                "redis+unix:///r.sock?password=SECRET&db=1",
                "redis+unix:///r.sock?password=***&db=1",
            ),
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
            assert!(!redact(url).contains("SECRET"), "{url}");
        }
    }

    #[test]
    fn text_that_is_no_url_is_hidden_when_it_may_hold_a_secret() {
        assert_eq!(redact("not a url"), "not a url");
        assert!(!redact("redis://:SEC RET@[host").contains("SEC"));
        assert!(!redact("host?pass=SECRET").contains("SECRET"));
    }
}
