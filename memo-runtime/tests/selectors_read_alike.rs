//! `labels = "…"` and `annotations = "…"` (checked by the macro's parser when they compile) and
//! [`Selector`] (the runtime's copy of the same parser) accept the same selectors and reject the
//! same mistakes with the same messages at the same bytes.
//!
//! The macros run their copy while compiling, where a test cannot call it: it is compiled into
//! this test from its file instead (what `#[handler(labels = …)]` makes of a bad selector is in
//! the ui-tests, `23_malformed_selector`). Both files must also be the same below their headers,
//! so no difference hides in a case this table misses.

use memo_runtime::{Selector, SelectorError};
use std::path::Path;

#[path = "../../memo-macros/src/selector.rs"]
#[allow(dead_code)]
mod macro_copy;

use macro_copy::Target;

const CASES: &[&str] = &[
    "tier=web",
    "tier==web",
    "tier!=web",
    "env in (prod, staging)",
    "env notin (dev)",
    "tier",
    "!legacy",
    "tier=web,env in (prod,staging),!legacy",
    "  a = 1 ,  b != 2 , c in( x , y ) ,d notin(z),  e ,  ! f  ",
    "a=",
    "a in (x,)",
    "app.kubernetes.io/name=web",
    "example.com/url=https://x.io/a?b=c!",
    "note in (a:b, -x-)",
    "",
    "   ",
    "a=b,",
    "a=b,,c",
    ",a",
    "=a",
    "a=b c",
    "a b",
    "a in b",
    "a notin",
    "a in (b, c",
    "a in (b c)",
    "a in ()",
    "a = (b)",
    "a != (b)",
    "a!b",
    "a > 1",
    "a < 1",
    "a(b)",
    "a)",
    "!a=b",
    "!",
    "a=b!",
    "a=-b",
    "Tier_=a",
    "a/b/c",
    "/a",
    "a/",
    "Example.com/a",
    "é=a",
    "tier in (wéb)",
];

fn runtime(text: &str, target: Target) -> Result<(), (usize, usize, String)> {
    let parsed: Result<Selector, SelectorError> = match target {
        Target::Labels => Selector::labels(text),
        Target::Annotations => Selector::annotations(text),
    };
    parsed
        .map(drop)
        .map_err(|error| (error.span().start, error.span().end, error.message().to_owned()))
}

fn macros(text: &str, target: Target) -> Result<(), (usize, usize, String)> {
    macro_copy::parse(text, target)
        .map(drop)
        .map_err(|error| (error.start, error.end, error.message))
}

#[test]
fn both_copies_accept_and_reject_alike() {
    let long = format!("{}=v", "n".repeat(64));
    let long_value = format!("n={}", "v".repeat(64));
    let cases = CASES.iter().copied().chain([long.as_str(), long_value.as_str()]);
    let (mut accepted, mut rejected) = (0, 0);
    for text in cases {
        for target in [Target::Labels, Target::Annotations] {
            let (runtime, macros) = (runtime(text, target), macros(text, target));
            assert_eq!(runtime, macros, "{target:?} {text:?}");
            if runtime.is_ok() { accepted += 1 } else { rejected += 1 }
        }
    }
    // The table exercises both sides, so a parser that rejects everything does not pass it.
    assert!(
        accepted > 20 && rejected > 40,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn both_files_are_the_same_below_their_headers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let body = |path: &str| {
        let text = std::fs::read_to_string(root.join(path)).expect("readable");
        text.lines()
            .skip_while(|line| line.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        body("memo-macros/src/selector.rs") == body("memo-runtime/src/api/selector_text.rs"),
        "memo-macros/src/selector.rs and memo-runtime/src/api/selector_text.rs differ below their headers: \
         make the same change to both"
    );
}
