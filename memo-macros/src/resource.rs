//! Checks a `KIND` selector: a Kubernetes kind, singular or plural, optionally with an API group.

/// Why `text` is not a valid resource selector, if it is not.
pub(crate) fn problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some(
            "the resource kind is empty; write the kind as in the object's `kind`, e.g. `\"KopfExample\"`".to_owned(),
        );
    }
    let (name, group) = match text.split_once('.') {
        Some((name, group)) => (name, Some(group)),
        None => (text, None),
    };
    let first = name.chars().next();
    if !first.is_some_and(|c| c.is_ascii_alphabetic()) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Some(format!(
            "`{text}` is not a Kubernetes kind: a kind or plural starts with a letter and has only letters, digits and `-`, e.g. `\"KopfExample\"` or `\"kopfexamples.kopf.dev\"`"
        ));
    }
    if let Some(group) = group {
        let valid_label = |label: &str| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !group.split('.').all(valid_label) {
            return Some(format!(
                "`{group}` is not a valid API group: it is a lowercase DNS name such as `kopf.dev` or `apps`"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn accepts_kinds_plurals_and_groups() {
        for ok in [
            "KopfExample",
            "kopfexample",
            "kopfexamples",
            "kopfexamples.kopf.dev",
            "deployments.apps",
            "pods",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn rejects_empty_and_malformed() {
        assert!(problem("").unwrap().contains("empty"));
        assert!(problem("Kopf Example").unwrap().contains("not a Kubernetes kind"));
        assert!(problem("1pods").unwrap().contains("not a Kubernetes kind"));
        assert!(problem("pods/v1").unwrap().contains("not a Kubernetes kind"));
        assert!(problem("kopfexamples.Kopf.Dev").unwrap().contains("API group"));
        assert!(problem("kopfexamples.kopf..dev").unwrap().contains("API group"));
    }
}
