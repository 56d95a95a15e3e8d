//! The filter keys of `#[handler]`: `labels = "SELECTOR"`, `annotations = "SELECTOR"`,
//! `when = path` and `field = "a.b.c"`, read and checked here so that `args` stays about
//! triggers and timing.

use crate::args::TriggerKind;
use crate::errors::Errors;
use crate::selector::{self, Target};
use proc_macro2::Span;
use syn::{Expr, ExprLit, ExprPath, Lit, LitStr, Meta};

/// The filter keys, for "did you mean" and the list of keys.
pub(crate) const KEYS: [&str; 4] = ["labels", "annotations", "when", "field"];

/// The filters a handler was given, each valid as far as the macro can tell.
#[derive(Default)]
pub(crate) struct Filters {
    pub(crate) labels: Option<LitStr>,
    pub(crate) annotations: Option<LitStr>,
    /// Its type is checked by the compiler, in the generated code.
    pub(crate) when: Option<ExprPath>,
    pub(crate) field: Option<LitStr>,
    /// Every filter key written, valid value or not: where they may appear depends on the
    /// trigger, checked once all keys are read.
    pub(crate) written: Vec<(&'static str, Span)>,
}

/// Reads one filter key's value into `filters`; `key` is one of [`KEYS`].
pub(crate) fn parse(filters: &mut Filters, meta: &Meta, key: &str, key_span: Span, errors: &mut Errors) {
    let Some(key) = KEYS.into_iter().find(|known| *known == key) else {
        return;
    };
    filters.written.push((key, key_span));
    let example = match key {
        "labels" => "labels = \"tier=web\"",
        "annotations" => "annotations = \"example.com/managed\"",
        "when" => "when = is_big",
        _ => "field = \"spec.replicas\"",
    };
    let Meta::NameValue(name_value) = meta else {
        errors.spanned(meta, format!("`{key}` needs a value: `{example}`"));
        return;
    };
    let value = &name_value.value;
    match key {
        "when" => match value {
            Expr::Path(path) => filters.when = Some(path.clone()),
            Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => errors.spanned(
                text,
                format!(
                    "`when` names a function, not a string: write `when = {}` with `fn {}(body: &serde_json::Value) -> bool`",
                    function_name(&text.value()),
                    function_name(&text.value())
                ),
            ),
            other => errors.spanned(
                other,
                "`when` names a function: write `when = is_big` with `fn is_big(body: &serde_json::Value) -> bool`",
            ),
        },
        _ => {
            let Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) = value else {
                errors.spanned(value, format!("expected a string literal: `{example}`"));
                return;
            };
            match key {
                "labels" => filters.labels = selector_text(text, Target::Labels, errors),
                "annotations" => filters.annotations = selector_text(text, Target::Annotations, errors),
                _ => filters.field = field_path(text, errors),
            }
        }
    }
}

/// A name to suggest for `when = "…"`: the string itself if it is a path.
fn function_name(text: &str) -> String {
    if syn::parse_str::<syn::Path>(text).is_ok() {
        text.to_owned()
    } else {
        "is_big".to_owned()
    }
}

/// The selector, if it parses as the runtime will parse it.
fn selector_text(text: &LitStr, target: Target, errors: &mut Errors) -> Option<LitStr> {
    let value = text.value();
    let Err(error) = selector::parse(&value, target) else {
        return Some(text.clone());
    };
    let what = match target {
        Target::Labels => "label selector",
        Target::Annotations => "annotation selector",
    };
    match narrow(text, &value, error.start, error.end) {
        Some(span) => errors.at(span, format!("invalid {what}: {}", error.message)),
        // An empty selector has nothing to point into.
        None if value.trim().is_empty() => errors.spanned(text, format!("invalid {what}: {}", error.message)),
        // Where only the whole string can be underlined, the message points into it.
        None => errors.spanned(
            text,
            format!(
                "invalid {what}: {}\n{}",
                error.message,
                caret(&value, error.start, error.end)
            ),
        ),
    }
    None
}

/// The span of bytes `start..end` of the string's value, where the compiler can point inside a
/// literal (a nightly compiler) and the literal is written as its value (no escapes, not raw).
fn narrow(text: &LitStr, value: &str, start: usize, end: usize) -> Option<Span> {
    let written = text.token().to_string();
    if written != format!("\"{value}\"") {
        return None;
    }
    // An empty range would point at nothing: point at the character there, or the closing quote.
    let end = if start == end { end + 1 } else { end };
    text.token().subspan(start + 1..end + 1)
}

/// The selector on one line and carets under `start..end` on the next (one caret for an empty
/// range), indented to stand out from the message.
fn caret(value: &str, start: usize, end: usize) -> String {
    let before = value.get(..start).map_or(0, |text| text.chars().count());
    let width = value.get(start..end).map_or(0, |text| text.chars().count()).max(1);
    format!("    {value}\n    {}{}", " ".repeat(before), "^".repeat(width))
}

/// The dotted path, if every segment is a non-empty key.
fn field_path(text: &LitStr, errors: &mut Errors) -> Option<LitStr> {
    let value = text.value();
    if value.trim().is_empty() {
        errors.spanned(
            text,
            "`field` cannot be empty: name the field by its dotted path, e.g. `field = \"spec.replicas\"`",
        );
        return None;
    }
    if value.split('.').any(str::is_empty) || value.contains(char::is_whitespace) {
        errors.spanned(
            text,
            format!(
                "`field = \"{value}\"` is not a dotted path: write keys joined by single dots, e.g. `field = \"spec.replicas\"`"
            ),
        );
        return None;
    }
    if value.starts_with('/') || value.contains(['[', ']']) {
        errors.spanned(
            text,
            format!(
                "`field` is a dotted path of object keys, not a JSON Pointer or an index: write e.g. `field = \"spec.replicas\"`, not `{value}`"
            ),
        );
        return None;
    }
    Some(text.clone())
}

/// Reports the filters a handler of this kind cannot have: none on startup and cleanup handlers
/// (they have no object), `field` on update handlers only.
pub(crate) fn check_placement(filters: &Filters, kind: TriggerKind, errors: &mut Errors) {
    for &(key, span) in &filters.written {
        if !kind.is_resource() {
            errors.at(
                span,
                format!(
                    "`{key}` filters the objects a handler runs for, and {} has none; remove `{key}`",
                    kind.describe()
                ),
            );
        } else if key == "field" && kind != TriggerKind::Update {
            errors.at(
                span,
                format!(
                    "`field` applies to update handlers only: it runs the handler when that field changed; \
                     write `#[handler(update = \"KIND\", field = \"…\")]`, or filter {} with `when = FN`",
                    kind.describe()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_all(tokens: proc_macro2::TokenStream) -> (Filters, Vec<String>) {
        let metas = syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated;
        let metas = syn::parse::Parser::parse2(metas, tokens).unwrap();
        let mut filters = Filters::default();
        let mut errors = Errors::default();
        for meta in &metas {
            let key = meta.path().get_ident().unwrap().to_string();
            parse(&mut filters, meta, &key, Span::call_site(), &mut errors);
        }
        (filters, errors.messages())
    }

    #[test]
    fn valid_filters_are_kept() {
        let (filters, errors) = parse_all(quote!(
            labels = "tier=web, env in (prod)",
            annotations = "example.com/managed",
            when = crate::is_big,
            field = "spec.replicas"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(filters.labels.unwrap().value(), "tier=web, env in (prod)");
        assert_eq!(filters.annotations.unwrap().value(), "example.com/managed");
        assert!(filters.when.is_some());
        assert_eq!(filters.field.unwrap().value(), "spec.replicas");
        assert_eq!(filters.written.len(), 4);
    }

    #[test]
    fn a_bad_selector_says_what_and_where() {
        let (filters, errors) = parse_all(quote!(labels = "env in (prod, staging"));
        assert!(filters.labels.is_none());
        // Outside a compiler, the span can be narrowed and the message has no caret line.
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("invalid label selector: expected `)` to close the value list opened at byte 7"),
            "{errors:?}"
        );
        // Annotation values are free text, label values are not.
        let (_, errors) = parse_all(quote!(annotations = "example.com/owner=team:payments"));
        assert!(errors.is_empty(), "{errors:?}");
        let (_, errors) = parse_all(quote!(labels = "example.com/owner=team:payments"));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn wrong_values_say_what_to_write() {
        for (tokens, expected) in [
            (quote!(when = "is_big"), "write `when = is_big` with `fn is_big("),
            (quote!(when = |b| true), "`when` names a function"),
            (quote!(when), "`when` needs a value: `when = is_big`"),
            (
                quote!(labels = tier),
                "expected a string literal: `labels = \"tier=web\"`",
            ),
            (quote!(field = ""), "`field` cannot be empty"),
            (quote!(field = "spec..replicas"), "is not a dotted path"),
            (quote!(field = "spec.ports[0]"), "not a JSON Pointer or an index"),
        ] {
            let (_, errors) = parse_all(tokens);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(expected), "{expected}: {errors:?}");
        }
    }

    #[test]
    fn placement() {
        let (filters, _) = parse_all(quote!(field = "spec.size", labels = "a"));
        for (kind, count) in [
            (TriggerKind::Update, 0),
            (TriggerKind::Event, 1),
            (TriggerKind::Timer, 1),
            (TriggerKind::Startup, 2),
        ] {
            let mut errors = Errors::default();
            check_placement(&filters, kind, &mut errors);
            assert_eq!(errors.messages().len(), count, "{kind:?}: {:?}", errors.messages());
        }
        let mut errors = Errors::default();
        check_placement(&filters, TriggerKind::Create, &mut errors);
        assert!(
            errors.messages()[0].starts_with("`field` applies to update handlers only"),
            "{:?}",
            errors.messages()
        );
    }

    #[test]
    fn carets_count_characters() {
        assert_eq!(caret("é=a b", 4, 5), "    é=a b\n       ^");
        assert_eq!(caret("a", 1, 1), "    a\n     ^");
    }
}
