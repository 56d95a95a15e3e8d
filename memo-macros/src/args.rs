//! Parses the attribute arguments: `#[handler(event = "KIND", id = "...")]` and
//! `#[prepare_memory(component = "NAME")]`.

use crate::errors::Errors;
use crate::{duration, resource, suggest};
use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

/// What makes a handler run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TriggerKind {
    Event,
    Create,
    Update,
    Delete,
    Timer,
    Startup,
    Cleanup,
}

impl TriggerKind {
    const ALL: [TriggerKind; 7] = [
        TriggerKind::Event,
        TriggerKind::Create,
        TriggerKind::Update,
        TriggerKind::Delete,
        TriggerKind::Timer,
        TriggerKind::Startup,
        TriggerKind::Cleanup,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            TriggerKind::Event => "event",
            TriggerKind::Create => "create",
            TriggerKind::Update => "update",
            TriggerKind::Delete => "delete",
            TriggerKind::Timer => "timer",
            TriggerKind::Startup => "startup",
            TriggerKind::Cleanup => "cleanup",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        TriggerKind::ALL.into_iter().find(|kind| kind.key() == key)
    }

    /// Whether the handler is about one resource (and so takes `= "KIND"`).
    pub(crate) fn is_resource(self) -> bool {
        !matches!(self, TriggerKind::Startup | TriggerKind::Cleanup)
    }

    /// How errors name this kind of handler.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TriggerKind::Event => "an event handler",
            TriggerKind::Create => "a create handler",
            TriggerKind::Update => "an update handler",
            TriggerKind::Delete => "a delete handler",
            TriggerKind::Timer => "a timer",
            TriggerKind::Startup => "a startup handler",
            TriggerKind::Cleanup => "a cleanup handler",
        }
    }
}

pub(crate) struct Trigger {
    pub(crate) kind: TriggerKind,
    pub(crate) key_span: Span,
    /// The `KIND` selector, for resource handlers.
    pub(crate) resource: Option<LitStr>,
}

#[derive(Default)]
pub(crate) struct HandlerArgs {
    pub(crate) trigger: Option<Trigger>,
    /// Nanoseconds.
    pub(crate) interval: Option<u64>,
    /// Nanoseconds.
    pub(crate) initial_delay: Option<u64>,
    pub(crate) id: Option<LitStr>,
    pub(crate) component: Option<LitStr>,
    /// `retries = N`.
    pub(crate) retries: Option<u32>,
    /// `backoff = DURATION`, nanoseconds.
    pub(crate) backoff: Option<u64>,
    /// `timeout = DURATION`, nanoseconds.
    pub(crate) timeout: Option<u64>,
}

const HANDLER_KEYS: [&str; 11] = [
    "event",
    "create",
    "update",
    "delete",
    "timer",
    "startup",
    "cleanup",
    "interval",
    "initial_delay",
    "id",
    "component",
];

/// Parses `#[handler(...)]` arguments, recording every problem in `errors` and keeping what is
/// valid.
pub(crate) fn parse_handler(args: TokenStream, errors: &mut Errors) -> HandlerArgs {
    let mut parsed = HandlerArgs::default();
    let Some(metas) = parse_metas(args, errors) else {
        return parsed;
    };
    let mut seen: Vec<String> = Vec::new();
    // Every trigger key written, valid or not, so that a rejected one does not cause follow-up errors.
    let mut kinds_written: Vec<TriggerKind> = Vec::new();
    // An unknown key that looks like a misspelled trigger (`evnt`): the missing trigger is that one.
    let mut misspelled_trigger = false;
    let mut interval_span = None;
    let mut initial_delay_span = None;
    for meta in &metas {
        let Some(key) = meta.path().get_ident().map(ToString::to_string) else {
            errors.spanned(meta.path(), "expected a key such as `event`, `timer` or `id`");
            continue;
        };
        if seen.contains(&key) {
            errors.spanned(meta.path(), format!("duplicate key `{key}`; give it once"));
            continue;
        }
        seen.push(key.clone());
        let key_span = meta
            .path()
            .get_ident()
            .map_or_else(Span::call_site, |ident| ident.span());
        if let Some(kind) = TriggerKind::from_key(&key) {
            kinds_written.push(kind);
            let resource = if kind.is_resource() {
                resource_value(meta, &key, errors)
            } else {
                if let Meta::NameValue(name_value) = meta {
                    errors.spanned(
                        &name_value.value,
                        format!("`{key}` takes no value: write `#[handler({key})]`"),
                    );
                } else if let Meta::List(list) = meta {
                    errors.spanned(list, format!("`{key}` takes no arguments: write `#[handler({key})]`"));
                }
                None
            };
            match &parsed.trigger {
                Some(first) => errors.at(
                    key_span,
                    format!(
                        "a handler has one trigger, but `{}` and `{key}` are both given; write a separate handler function for each",
                        first.kind.key()
                    ),
                ),
                None => {
                    parsed.trigger = Some(Trigger {
                        kind,
                        key_span,
                        resource,
                    })
                }
            }
            continue;
        }
        match key.as_str() {
            "interval" | "initial_delay" => {
                let Some(value) = name_value(meta, &key, "10", errors) else {
                    continue;
                };
                match duration::parse(&key, value) {
                    Ok(nanos) if key == "interval" => {
                        parsed.interval = Some(nanos);
                        interval_span = Some(key_span);
                    }
                    Ok(nanos) => {
                        parsed.initial_delay = Some(nanos);
                        initial_delay_span = Some(key_span);
                    }
                    Err(error) => {
                        errors.push(error);
                        // Remember the key anyway, so a bad value is not also reported as missing.
                        if key == "interval" {
                            parsed.interval = Some(1);
                        }
                    }
                }
            }
            "id" | "component" => {
                let Some(text) = string_value(meta, &key, errors) else {
                    continue;
                };
                if text.value().trim().is_empty() {
                    errors.spanned(&text, format!("`{key}` cannot be empty"));
                } else if key == "id" {
                    parsed.id = Some(text);
                } else {
                    parsed.component = Some(text);
                }
            }
            _ => {
                misspelled_trigger |=
                    suggest::closest(&key, HANDLER_KEYS).is_some_and(|s| TriggerKind::from_key(s).is_some());
                errors.at(key_span, unknown_key_message(&key));
            }
        }
    }

    match &parsed.trigger {
        None if misspelled_trigger || !kinds_written.is_empty() => {}
        None => errors.at(
            Span::call_site(),
            "`#[handler]` needs a trigger: `event = \"KIND\"`, `create = \"KIND\"`, `update = \"KIND\"`, \
             `delete = \"KIND\"`, `timer = \"KIND\", interval = N`, `startup`, or `cleanup`",
        ),
        // `event = "A", timer = "B", interval = 1`: the trigger conflict is the error to fix first.
        Some(_) if kinds_written.contains(&TriggerKind::Timer) && kinds_written.len() > 1 => {}
        Some(trigger) if trigger.kind == TriggerKind::Timer => {
            if parsed.interval.is_none() {
                errors.at(
                    trigger.key_span,
                    "a timer needs an `interval`: add `interval = 10` (seconds) or `interval = \"250ms\"`",
                );
            }
        }
        Some(trigger) => {
            for (key, span) in [("interval", interval_span), ("initial_delay", initial_delay_span)] {
                if let Some(span) = span {
                    errors.at(
                        span,
                        format!(
                            "`{key}` applies to timers only, not to `{}`; write `timer = \"KIND\", {key} = ...`",
                            trigger.kind.key()
                        ),
                    );
                }
            }
        }
    }
    parsed
}

/// Parses `#[prepare_memory]` / `#[prepare_memory(component = "NAME")]`; returns the component.
pub(crate) fn parse_preparer(args: TokenStream, errors: &mut Errors) -> Option<LitStr> {
    let metas = parse_metas(args, errors)?;
    let mut component: Option<LitStr> = None;
    for meta in &metas {
        match meta.path().get_ident().map(ToString::to_string).as_deref() {
            Some("component") => {
                if component.is_some() {
                    errors.spanned(meta.path(), "duplicate key `component`; give it once");
                    continue;
                }
                if let Some(text) = string_value(meta, "component", errors) {
                    if text.value().trim().is_empty() {
                        errors.spanned(&text, "`component` cannot be empty");
                    } else {
                        component = Some(text);
                    }
                }
            }
            Some(other) => errors.spanned(
                meta.path(),
                match suggest::closest(other, ["component"]) {
                    Some(suggestion) => {
                        format!("unknown key `{other}` in `#[prepare_memory]`; did you mean `{suggestion}`?")
                    }
                    None => {
                        format!("unknown key `{other}` in `#[prepare_memory]`; the only key is `component = \"NAME\"`")
                    }
                },
            ),
            None => errors.spanned(meta.path(), "expected `component = \"NAME\"`"),
        }
    }
    component
}

fn parse_metas(args: TokenStream, errors: &mut Errors) -> Option<Punctuated<Meta, Token![,]>> {
    match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => Some(metas),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

fn name_value<'m>(meta: &'m Meta, key: &str, example: &str, errors: &mut Errors) -> Option<&'m Expr> {
    match meta {
        Meta::NameValue(name_value) => Some(&name_value.value),
        _ => {
            errors.spanned(meta, format!("`{key}` needs a value: `{key} = {example}`"));
            None
        }
    }
}

fn string_value(meta: &Meta, key: &str, errors: &mut Errors) -> Option<LitStr> {
    let value = name_value(meta, key, "\"...\"", errors)?;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text), ..
        }) => Some(text.clone()),
        other => {
            errors.spanned(other, format!("expected a string literal: `{key} = \"...\"`"));
            None
        }
    }
}

fn resource_value(meta: &Meta, key: &str, errors: &mut Errors) -> Option<LitStr> {
    let Meta::NameValue(name_value) = meta else {
        errors.spanned(
            meta,
            format!("`{key}` needs the resource kind: `{key} = \"KopfExample\"`"),
        );
        return None;
    };
    let text = match &name_value.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text), ..
        }) => text.clone(),
        Expr::Path(path) if path.path.get_ident().is_some() => {
            let name = path.path.get_ident().map(ToString::to_string).unwrap_or_default();
            errors.spanned(
                path,
                format!("the resource kind is a string: write `{key} = \"{name}\"`"),
            );
            return None;
        }
        other => {
            errors.spanned(
                other,
                format!("expected the resource kind as a string literal: `{key} = \"KopfExample\"`"),
            );
            return None;
        }
    };
    if let Some(problem) = resource::problem(&text.value()) {
        errors.spanned(&text, problem);
        return None;
    }
    Some(text)
}

fn unknown_key_message(key: &str) -> String {
    let unsupported = match key {
        "idle" => Some("kopf's `idle` is not supported: a timer here runs every `interval` while its resource exists"),
        "sharp" => Some("kopf's `sharp` is not supported: a timer's interval counts from the end of its previous run"),
        "when" => Some("`when` filters are not supported: check the condition at the top of the handler and return early"),
        "labels" | "annotations" | "value" => Some(
            "filters on labels, annotations and fields are not supported: check them in the handler's `body` and return early",
        ),
        "retries" | "backoff" | "timeout" | "errors" => Some(
            "retry options are not supported: a failing handler is logged and the operator goes on; retry inside the handler if needed",
        ),
        "param" => Some("`param` is not supported: keep per-handler settings in the memo or in a constant"),
        "delay" => Some("`delay` is not supported here: did you mean `initial_delay` (timers only)?"),
        "group" | "version" | "plural" | "kind" | "resource" => Some(
            "the resource is the trigger's value, not a separate key: write e.g. `event = \"kopfexamples.kopf.dev\"` or `event = \"KopfExample\"`",
        ),
        "resume" => Some("kopf's `on.resume` is not supported: every existing resource arrives as a `create` event when the operator starts"),
        "daemon" => Some("kopf's daemons are not supported: use `timer = \"KIND\", interval = N`, or start a task in a `startup` handler"),
        "field" | "old" | "new" | "diff" => Some(
            "field handlers and diffs are not supported: compare values in the handler's `body` and keep what you need in the memo",
        ),
        "requires_finalizer" | "optional" | "deleted" => Some(
            "finalizer options are not supported: `delete` handlers run on the DELETED event and never block deletion",
        ),
        "registry" | "settings" => Some(
            "there is no registry or settings argument: handlers are collected by the macro; configure the run with `Operator`",
        ),
        _ => None,
    };
    if let Some(message) = unsupported {
        return message.to_owned();
    }
    let known = HANDLER_KEYS.map(|key| format!("`{key}`")).join(", ");
    match suggest::closest(key, HANDLER_KEYS) {
        Some(suggestion) => format!("unknown key `{key}`; did you mean `{suggestion}`?"),
        None => format!("unknown key `{key}`; the keys are {known}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (HandlerArgs, Vec<String>) {
        let mut errors = Errors::default();
        let args = parse_handler(tokens, &mut errors);
        (args, errors.messages())
    }

    #[test]
    fn event_handler_with_id() {
        let (args, errors) = parse(quote!(event = "KopfExample", id = "ping"));
        assert!(errors.is_empty(), "{errors:?}");
        let trigger = args.trigger.unwrap();
        assert_eq!(trigger.kind, TriggerKind::Event);
        assert_eq!(trigger.resource.unwrap().value(), "KopfExample");
        assert_eq!(args.id.unwrap().value(), "ping");
    }

    #[test]
    fn timer_with_interval_and_delay() {
        let (args, errors) = parse(quote!(timer = "kopfexamples", interval = "250ms", initial_delay = 2));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.interval, Some(250_000_000));
        assert_eq!(args.initial_delay, Some(2_000_000_000));
    }

    #[test]
    fn startup_takes_no_value() {
        let (args, errors) = parse(quote!(startup));
        assert!(errors.is_empty());
        assert_eq!(args.trigger.unwrap().kind, TriggerKind::Startup);
        let (_, errors) = parse(quote!(startup = "x"));
        assert_eq!(errors, ["`startup` takes no value: write `#[handler(startup)]`"]);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let (_, errors) = parse(quote!(evnt = "X", event = KopfExample, idle = 5, id = ""));
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("did you mean `event`?"));
        assert!(errors[1].contains("write `event = \"KopfExample\"`"));
        assert!(errors[2].contains("`idle` is not supported"));
        assert!(errors[3].contains("`id` cannot be empty"));
        // A misspelled trigger is the missing trigger: it is not reported twice.
        let (_, errors) = parse(quote!(evnt = "X"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (_, errors) = parse(quote!(idle = 5));
        assert!(errors[1].contains("needs a trigger"), "{errors:?}");
    }

    #[test]
    fn trigger_combinations() {
        let (_, errors) = parse(quote!(event = "A", timer = "A", interval = 1));
        assert!(errors.iter().any(|e| e.contains("one trigger")), "{errors:?}");
        assert_eq!(errors.len(), 1, "no follow-up error about `interval`: {errors:?}");
        let (_, errors) = parse(quote!(event = "A", interval = 1));
        assert!(
            errors.iter().any(|e| e.contains("applies to timers only")),
            "{errors:?}"
        );
        let (_, errors) = parse(quote!(timer = "A"));
        assert!(errors.iter().any(|e| e.contains("needs an `interval`")), "{errors:?}");
        let (_, errors) = parse(quote!(timer = "A", interval = 0));
        assert_eq!(
            errors.len(),
            1,
            "a bad interval is not also reported as missing: {errors:?}"
        );
        let (_, errors) = parse(quote!(event = "A", event = "B"));
        assert!(errors.iter().any(|e| e.contains("duplicate key `event`")), "{errors:?}");
    }

    #[test]
    fn negative_and_non_literal_durations() {
        let (_, errors) = parse(quote!(timer = "A", interval = -5));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("must not be negative"), "{errors:?}");
        let (_, errors) = parse(quote!(timer = "A", interval = 1, initial_delay = -0.5));
        assert!(errors[0].contains("`initial_delay` must not be negative"), "{errors:?}");
        let (_, errors) = parse(quote!(timer = "A", interval = f64::NAN));
        assert!(errors[0].contains("must be a literal"), "{errors:?}");
    }

    #[test]
    fn kopf_options_get_targeted_messages() {
        for (key, expected) in [
            ("idle", "kopf's `idle`"),
            ("when", "`when` filters"),
            ("labels", "filters on labels"),
            ("retries", "retry options"),
            ("plural", "the resource is the trigger's value"),
            ("daemon", "daemons are not supported"),
            ("field", "field handlers"),
        ] {
            let key = syn::Ident::new(key, Span::call_site());
            let (_, errors) = parse(quote!(event = "A", #key = 1));
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(expected), "{key}: {errors:?}");
        }
    }

    #[test]
    fn resource_kinds_are_checked() {
        let (_, errors) = parse(quote!(event = ""));
        assert!(errors[0].contains("empty"), "{errors:?}");
        let (_, errors) = parse(quote!(create = "not a kind"));
        assert!(errors[0].contains("not a Kubernetes kind"), "{errors:?}");
    }

    #[test]
    fn preparer_component() {
        let mut errors = Errors::default();
        let component = parse_preparer(quote!(component = "per-name"), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(component.unwrap().value(), "per-name");
        let mut errors = Errors::default();
        parse_preparer(quote!(componnet = "x"), &mut errors);
        assert!(errors.messages()[0].contains("did you mean `component`?"));
    }
}
