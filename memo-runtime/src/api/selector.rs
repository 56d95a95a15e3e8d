//! Label and annotation selectors: a parsed `labels = "…"` / `annotations = "…"` filter, and
//! matching it against an object.

use crate::api::selector_text::{self, Operator, Requirement, Target};
use serde_json::Value;
use std::fmt;
use std::ops::Range;

/// A Kubernetes label selector, matched against an object's labels or its annotations.
///
/// The syntax is Kubernetes' (`kubectl get -l …`): requirements separated by commas, all of which
/// must hold, with whitespace allowed around every token:
///
/// | requirement | holds when the key is |
/// |---|---|
/// | `tier=web`, `tier==web` | present, with value `web` |
/// | `tier!=web` | absent, or present with another value |
/// | `env in (prod, staging)` | present, with one of these values |
/// | `env notin (dev)` | absent, or present with none of these values |
/// | `tier` | present, with any value |
/// | `!legacy` | absent |
///
/// Keys are Kubernetes qualified names (`name` or `example.com/name`). For [labels](Self::labels)
/// values are label values (at most 63 characters of letters, digits, `-`, `_` and `.`, starting
/// and ending with a letter or digit, or empty); for [annotations](Self::annotations) they may be
/// any text without whitespace, `,`, `(` or `)`, since annotation values are free text. `tier=`
/// asks for an empty value, as in Kubernetes. `>` and `<` are not supported.
///
/// The macros check the selectors of `labels = "…"` and `annotations = "…"` with the same parser
/// when they compile, so a filter that compiled always parses here.
///
/// ```
/// use memo_runtime::Selector;
/// use serde_json::json;
///
/// let web = Selector::labels("tier=web, env in (prod, staging), !legacy").unwrap();
/// let body = json!({"metadata": {"labels": {"tier": "web", "env": "prod"}}});
/// assert!(web.matches_body(&body));
///
/// let error = Selector::labels("env in (prod, staging").unwrap_err();
/// assert_eq!(error.message(), "expected `)` to close the value list opened at byte 7");
/// assert_eq!(error.span(), 21..21);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    text: String,
    target: Target,
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses a selector of labels, checking keys and values by Kubernetes' rules for labels.
    ///
    /// ```
    /// use memo_runtime::Selector;
    ///
    /// assert!(Selector::labels("app.kubernetes.io/name=web").is_ok());
    /// let error = Selector::labels("tier=web app").unwrap_err();
    /// assert_eq!(error.message(), "expected `,` between requirements, found `app`");
    /// ```
    pub fn labels(text: &str) -> Result<Selector, SelectorError> {
        Selector::parse(text, Target::Labels)
    }

    /// Parses a selector of annotations: keys are checked as for labels, values may be any text
    /// without whitespace, `,`, `(` or `)`.
    ///
    /// ```
    /// use memo_runtime::Selector;
    /// use serde_json::json;
    ///
    /// let managed = Selector::annotations("example.com/owner=team:payments").unwrap();
    /// let body = json!({"metadata": {"annotations": {"example.com/owner": "team:payments"}}});
    /// assert!(managed.matches_body(&body));
    /// assert!(Selector::labels("example.com/owner=team:payments").is_err());
    /// ```
    pub fn annotations(text: &str) -> Result<Selector, SelectorError> {
        Selector::parse(text, Target::Annotations)
    }

    fn parse(text: &str, target: Target) -> Result<Selector, SelectorError> {
        match selector_text::parse(text, target) {
            Ok(requirements) => Ok(Selector {
                text: text.to_owned(),
                target,
                requirements,
            }),
            Err(error) => Err(SelectorError {
                text: text.to_owned(),
                span: error.start..error.end,
                message: error.message,
            }),
        }
    }

    /// Whether every requirement holds for the map that `get` looks keys up in.
    ///
    /// ```
    /// use memo_runtime::{Labels, Selector};
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"labels": {"tier": "web"}}});
    /// let labels = Labels::of(&body);
    /// assert!(Selector::labels("tier in (web, api)").unwrap().matches(|key| labels.get(key)));
    /// assert!(!Selector::labels("tier").unwrap().matches(|_| None));
    /// ```
    pub fn matches<'v>(&self, get: impl Fn(&str) -> Option<&'v str>) -> bool {
        self.requirements.iter().all(|requirement| {
            let value = get(&requirement.key);
            let listed = |value: &str| requirement.values.iter().any(|v| v == value);
            match requirement.operator {
                Operator::Equals | Operator::In => value.is_some_and(listed),
                Operator::NotEquals | Operator::NotIn => !value.is_some_and(listed),
                Operator::Exists => value.is_some(),
                Operator::NotExists => value.is_none(),
            }
        })
    }

    /// Whether the selector matches an object's body: its `metadata.labels` for a selector of
    /// labels, its `metadata.annotations` for one of annotations (absent maps are empty).
    ///
    /// ```
    /// use memo_runtime::Selector;
    /// use serde_json::json;
    ///
    /// let not_legacy = Selector::labels("!legacy").unwrap();
    /// assert!(not_legacy.matches_body(&json!({"metadata": {"name": "a"}})));
    /// assert!(!not_legacy.matches_body(&json!({"metadata": {"labels": {"legacy": ""}}})));
    /// ```
    pub fn matches_body(&self, body: &Value) -> bool {
        let map = match self.target {
            Target::Labels => &body["metadata"]["labels"],
            Target::Annotations => &body["metadata"]["annotations"],
        };
        self.matches(|key| map.get(key).and_then(Value::as_str))
    }

    /// The text the selector was parsed from.
    ///
    /// ```
    /// use memo_runtime::Selector;
    ///
    /// assert_eq!(Selector::labels("tier = web").unwrap().as_str(), "tier = web");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a selector does not parse: where in its text, and what to write instead.
///
/// ```
/// use memo_runtime::Selector;
///
/// let error = Selector::labels("tier in web").unwrap_err();
/// assert_eq!(error.span(), 8..11);
/// assert_eq!(
///     error.to_string(),
///     "invalid selector `tier in web` at byte 8: expected `(` to open the value list after `in`, \
///      found `web`: write `tier in (a, b)`",
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    text: String,
    span: Range<usize>,
    message: String,
}

impl SelectorError {
    /// The bytes of the selector text at fault; an empty span points between two characters, at
    /// the end for a selector cut short.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// What is wrong, and how to write it instead.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The selector text that failed to parse.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid selector `{}` at byte {}: {}",
            self.text, self.span.start, self.message
        )
    }
}

impl std::error::Error for SelectorError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(text: &str) -> (Range<usize>, String) {
        let error = Selector::labels(text).unwrap_err();
        (error.span(), error.message().to_owned())
    }

    fn requirements(text: &str) -> Vec<(String, Operator, Vec<String>)> {
        Selector::labels(text)
            .unwrap()
            .requirements
            .into_iter()
            .map(|r| (r.key, r.operator, r.values))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> (String, Operator, Vec<String>) {
        (key.to_owned(), operator, values.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn every_operator_parses() {
        assert_eq!(
            requirements("a=1,b==2,c!=3,d in (x,y),e notin (z),f,!g"),
            vec![
                req("a", Operator::Equals, &["1"]),
                req("b", Operator::Equals, &["2"]),
                req("c", Operator::NotEquals, &["3"]),
                req("d", Operator::In, &["x", "y"]),
                req("e", Operator::NotIn, &["z"]),
                req("f", Operator::Exists, &[]),
                req("g", Operator::NotExists, &[]),
            ]
        );
    }

    #[test]
    fn whitespace_around_tokens_is_allowed() {
        assert_eq!(
            requirements("  a = 1 ,  b != 2 , c in( x , y ) ,d notin(z),  e ,  ! f  "),
            vec![
                req("a", Operator::Equals, &["1"]),
                req("b", Operator::NotEquals, &["2"]),
                req("c", Operator::In, &["x", "y"]),
                req("d", Operator::NotIn, &["z"]),
                req("e", Operator::Exists, &[]),
                req("f", Operator::NotExists, &[]),
            ]
        );
    }

    #[test]
    fn empty_values_are_values_as_in_kubernetes() {
        assert_eq!(requirements("a="), vec![req("a", Operator::Equals, &[""])]);
        assert_eq!(
            requirements("a= ,b"),
            vec![req("a", Operator::Equals, &[""]), req("b", Operator::Exists, &[])]
        );
        assert_eq!(requirements("a in (x,)"), vec![req("a", Operator::In, &["x", ""])]);
    }

    #[test]
    fn prefixed_keys_and_long_names() {
        let name = "n".repeat(63);
        assert!(Selector::labels(&format!("app.kubernetes.io/{name}=v")).is_ok());
        assert_eq!(
            error(&format!("{name}x")),
            (
                0..64,
                format!("`{name}x` is not a valid label key: its name is 64 characters long, more than 63")
            )
        );
    }

    #[test]
    fn syntax_errors_point_at_the_fault() {
        let cases: &[(&str, Range<usize>, &str)] = &[
            (
                "",
                0..0,
                "the selector is empty: write at least one requirement, such as `tier=web`, or leave the \
                 filter out to match every object",
            ),
            (
                "  ",
                0..2,
                "the selector is empty: write at least one requirement, such as `tier=web`, or leave the \
                 filter out to match every object",
            ),
            (
                "a=b,",
                3..4,
                "expected a requirement after `,`: remove the trailing comma",
            ),
            ("a=b,,c", 4..5, "expected a key, found `,`"),
            (",a", 0..1, "expected a key, found `,`"),
            ("=a", 0..1, "expected a key, found `=`"),
            ("a=b c", 4..5, "expected `,` between requirements, found `c`"),
            (
                "a b",
                2..3,
                "expected an operator after `a`, found `b`: use `=`, `==`, `!=`, `in (…)` or `notin (…)`, or `,` to start the next requirement",
            ),
            (
                "a in b",
                5..6,
                "expected `(` to open the value list after `in`, found `b`: write `a in (a, b)`",
            ),
            (
                "a notin",
                7..7,
                "expected `(` to open the value list after `notin`, found the end of the selector: write `a notin (a, b)`",
            ),
            (
                "a in (b, c",
                10..10,
                "expected `)` to close the value list opened at byte 5",
            ),
            (
                "a in (b c)",
                8..9,
                "expected `,` or `)` in the value list, found `c`: separate values with commas",
            ),
            (
                "a in ()",
                5..7,
                "the value list of `in` is empty: name at least one value, as in `a in (a)`",
            ),
            (
                "a notin ( )",
                8..11,
                "the value list of `notin` is empty: name at least one value, as in `a notin (a)`",
            ),
            (
                "a = (b)",
                4..5,
                "`=` takes one value, not a list: write `a in (a, b)` to allow several",
            ),
            (
                "a != (b)",
                5..6,
                "`!=` takes one value, not a list: write `a notin (a, b)` to allow several",
            ),
            (
                "a!b",
                1..2,
                "expected `=` after `!`: write `a!=value`, or `!a` for an absent key",
            ),
            (
                "a > 1",
                2..3,
                "`>` is not supported in these selectors: use `=`, `==`, `!=`, `in (…)` or `notin (…)`",
            ),
            ("a(b)", 1..2, "expected an operator before `(`: write `a in (a, b)`"),
            ("a)", 1..2, "unexpected `)`: no value list is open"),
            (
                "!a=b",
                0..3,
                "`!a` takes no operator or value: it requires that `a` is absent; write `a!=value` to exclude one value",
            ),
            ("!", 1..1, "expected a key, found the end of the selector"),
            (
                "a=b!",
                2..4,
                "`b!` is not a valid label value: a label value has only letters, digits, `-`, `_` and `.`",
            ),
            (
                "a=-b",
                2..4,
                "`-b` is not a valid label value: a label value starts and ends with a letter or digit",
            ),
            (
                "Tier_=a",
                0..5,
                "`Tier_` is not a valid label key: a name starts and ends with a letter or digit",
            ),
            (
                "a/b/c",
                0..5,
                "`a/b/c` is not a valid label key: it has more than one `/`; a key is `name` or `prefix/name`",
            ),
            (
                "/a",
                0..2,
                "`/a` is not a valid label key: the prefix before `/` is empty",
            ),
            ("a/", 0..2, "`a/` is not a valid label key: the name after `/` is empty"),
            (
                "Example.com/a",
                0..13,
                "`Example.com/a` is not a valid label key: its prefix `Example.com` is not a DNS subdomain: dot-separated parts of lowercase letters, digits and `-`, each starting and ending with a letter or digit, like `example.com`",
            ),
            (
                "é=a",
                0..2,
                "`é` is not a valid label key: a name has only letters, digits, `-`, `_` and `.`",
            ),
        ];
        for (text, span, message) in cases {
            assert_eq!(error(text), (span.clone(), message.to_string()), "{text:?}");
        }
    }

    #[test]
    fn annotation_values_are_free_text_but_keys_are_checked() {
        let selector = Selector::annotations("example.com/url=https://x.io/a?b=c!, note in (a:b, -x-)").unwrap();
        assert_eq!(selector.requirements[0].values, ["https://x.io/a?b=c!"]);
        assert_eq!(selector.requirements[1].values, ["a:b", "-x-"]);
        let error = Selector::annotations("Bad_=x").unwrap_err();
        assert_eq!(
            error.message(),
            "`Bad_` is not a valid annotation key: a name starts and ends with a letter or digit"
        );
    }

    #[test]
    fn matching_follows_kubernetes() {
        let labels = json!({"tier": "web", "env": "prod", "empty": ""});
        let matches = |text: &str| Selector::labels(text).unwrap().matches(|key| labels.get(key)?.as_str());
        for (text, expected) in [
            ("tier=web", true),
            ("tier==api", false),
            ("missing=web", false),
            ("tier!=api", true),
            ("tier!=web", false),
            ("missing!=web", true),
            ("env in (prod, staging)", true),
            ("env in (dev)", false),
            ("missing in (dev)", false),
            ("env notin (dev)", true),
            ("env notin (prod)", false),
            ("missing notin (prod)", true),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!tier", false),
            ("empty=", true),
            ("empty", true),
            ("tier=web,env=dev", false),
            ("tier=web,env=prod,!legacy", true),
        ] {
            assert_eq!(matches(text), expected, "{text}");
        }
    }

    #[test]
    fn bodies_are_matched_on_the_selectors_map() {
        let body = json!({"metadata": {"labels": {"a": "1"}, "annotations": {"b": "2", "n": 3}}});
        assert!(Selector::labels("a=1,!b").unwrap().matches_body(&body));
        assert!(Selector::annotations("b=2,!a").unwrap().matches_body(&body));
        // Kubernetes never sends a value that is not a string; one is treated as absent.
        assert!(Selector::annotations("!n").unwrap().matches_body(&body));
        assert!(Selector::labels("!a").unwrap().matches_body(&json!({})));
    }
}
