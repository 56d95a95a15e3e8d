//! Parses the attribute arguments: `#[handler(event = "KIND", id = "...")]` and
//! `#[prepare_memory(component = "NAME")]`.

use crate::errors::Errors;
use crate::filters::{self, Filters};
use crate::{duration, resource, suggest};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token, UnOp};

/// What makes a handler run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TriggerKind {
    Event,
    Create,
    Update,
    Delete,
    Resume,
    Timer,
    Startup,
    Cleanup,
}

impl TriggerKind {
    const ALL: [TriggerKind; 8] = [
        TriggerKind::Event,
        TriggerKind::Create,
        TriggerKind::Update,
        TriggerKind::Delete,
        TriggerKind::Resume,
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
            TriggerKind::Resume => "resume",
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
            TriggerKind::Resume => "a resume handler",
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
    /// The `timeout` key, when written (valid value or not): whether the function may have it
    /// depends on its `async`, which `check::timeout_needs_async` sees.
    pub(crate) timeout_span: Option<Span>,
    /// `labels`, `annotations`, `when` and `field`.
    pub(crate) filters: Filters,
    /// `optional` (delete handlers): run on `DELETED`, holding no finalizer.
    pub(crate) optional: bool,
}

const HANDLER_KEYS: [&str; 20] = [
    "event",
    "create",
    "update",
    "delete",
    "resume",
    "optional",
    "timer",
    "startup",
    "cleanup",
    "interval",
    "initial_delay",
    "id",
    "component",
    "retries",
    "backoff",
    "timeout",
    filters::KEYS[0],
    filters::KEYS[1],
    filters::KEYS[2],
    filters::KEYS[3],
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
    // `retries`, `backoff` and `timeout` as written, valid value or not: where they may appear
    // depends on the trigger, checked once all keys are read.
    let mut retry_keys: Vec<(&'static str, Span)> = Vec::new();
    let mut optional_span = None;
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
            "optional" => {
                if let Meta::Path(_) = meta {
                    parsed.optional = true;
                    optional_span = Some(key_span);
                } else {
                    errors.spanned(
                        meta,
                        "`optional` takes no value: write `#[handler(delete = \"KIND\", optional)]`",
                    );
                }
            }
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
            "retries" => {
                retry_keys.push(("retries", key_span));
                let Some(value) = name_value(meta, &key, "5", errors) else {
                    continue;
                };
                match retries(value) {
                    Ok(retries) => parsed.retries = Some(retries),
                    Err(error) => errors.push(error),
                }
            }
            "backoff" | "timeout" => {
                let key: &'static str = if key == "backoff" { "backoff" } else { "timeout" };
                retry_keys.push((key, key_span));
                if key == "timeout" {
                    parsed.timeout_span = Some(key_span);
                }
                let Some(value) = name_value(meta, key, "\"2s\"", errors) else {
                    continue;
                };
                match duration::parse(key, value).and_then(|nanos| non_zero(key, nanos, value)) {
                    Ok(nanos) if key == "backoff" => parsed.backoff = Some(nanos),
                    Ok(nanos) => parsed.timeout = Some(nanos),
                    Err(error) => errors.push(error),
                }
            }
            "labels" | "annotations" | "when" | "field" => {
                filters::parse(&mut parsed.filters, meta, &key, key_span, errors);
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

    // With two triggers, the conflict is the error to fix first.
    if let (Some(trigger), [_]) = (&parsed.trigger, kinds_written.as_slice()) {
        for &(key, span) in &retry_keys {
            if let Some(message) = misplaced_retry_key(key, trigger.kind) {
                errors.at(span, message);
            }
        }
        filters::check_placement(&parsed.filters, trigger.kind, errors);
        if let Some(span) = optional_span
            && trigger.kind != TriggerKind::Delete
        {
            errors.at(
                span,
                format!(
                    "`optional` applies to delete handlers (no finalizer: best effort, on `DELETED`), not to {}; remove it",
                    trigger.kind.describe()
                ),
            );
        }
    }

    match &parsed.trigger {
        None if misspelled_trigger || !kinds_written.is_empty() => {}
        None => errors.at(
            Span::call_site(),
            "`#[handler]` needs a trigger: `event = \"KIND\"`, `create = \"KIND\"`, `update = \"KIND\"`, \
             `delete = \"KIND\"`, `resume = \"KIND\"`, `timer = \"KIND\", interval = N`, `startup`, or `cleanup`",
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

/// Why `key` (`retries`, `backoff` or `timeout`) cannot be given to a handler of this kind, if it
/// cannot. Whether `timeout` may be given also depends on `async`: see `check::timeout_needs_async`.
fn misplaced_retry_key(key: &str, kind: TriggerKind) -> Option<String> {
    let retried = "applies to create, update and delete handlers";
    let reason = match (key, kind) {
        (_, TriggerKind::Create | TriggerKind::Update | TriggerKind::Delete | TriggerKind::Resume) => return None,
        ("timeout", TriggerKind::Event | TriggerKind::Timer) => return None,
        ("timeout", TriggerKind::Startup | TriggerKind::Cleanup) => {
            return Some(format!(
                "`timeout` applies to resource handlers (event, create, update, delete and timer), not to {}; \
                 remove it, and bound the work inside the handler if needed",
                kind.describe()
            ));
        }
        (_, TriggerKind::Event) => format!(
            "`{key}` {retried}: an `event` handler is fire-and-forget (kopf's `on.event`) and is not retried; \
             use `create = \"KIND\"`, `update = \"KIND\"` or `delete = \"KIND\"` to retry"
        ),
        (_, TriggerKind::Timer) => {
            format!("`{key}` {retried}: a timer is not retried, it simply runs again at its next tick; remove `{key}`")
        }
        (_, TriggerKind::Startup) => format!(
            "`{key}` {retried}: a startup handler is not retried, if it fails the operator stops; remove `{key}`"
        ),
        (_, TriggerKind::Cleanup) => {
            format!("`{key}` {retried}: a cleanup handler runs once, at shutdown, and is not retried; remove `{key}`")
        }
    };
    Some(reason)
}

/// `retries = N`: a whole number that fits `u32`.
fn retries(value: &Expr) -> syn::Result<u32> {
    let hint = "write the number of retries after the first call, e.g. `retries = 5` (`retries = 0`: never retried; \
                leave it out for unlimited retries)";
    let error = |message: String| Err(syn::Error::new_spanned(value, message));
    match value {
        // syn reads `-1` in an attribute as one negative literal.
        Expr::Lit(ExprLit {
            lit: Lit::Int(_) | Lit::Float(_),
            ..
        }) if value.to_token_stream().to_string().starts_with('-') => {
            error(format!("`retries` must not be negative: {hint}"))
        }
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            error(format!("`retries` must not be negative: {hint}"))
        }
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => int.base10_parse::<u32>().or_else(|_| {
            error(format!(
                "`retries` is too large: at most {}; leave it out for unlimited retries",
                u32::MAX
            ))
        }),
        Expr::Lit(ExprLit { lit: Lit::Float(_), .. }) => error(format!("`retries` is a whole number: {hint}")),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text), ..
        }) if text.value().trim().parse::<u32>().is_ok() => error(format!(
            "`retries` is a number, not a string: write `retries = {}`",
            text.value().trim()
        )),
        Expr::Path(path) => error(format!(
            "`retries` must be a literal: the macro reads it while compiling and cannot evaluate `{}`; {hint}",
            path.to_token_stream().to_string().replace(' ', "")
        )),
        _ => error(format!("expected a whole number for `retries`: {hint}")),
    }
}

/// `backoff` and `timeout` cannot be zero (`duration::parse` refuses zero for `interval` only).
fn non_zero(key: &str, nanos: u64, value: &Expr) -> syn::Result<u64> {
    if nanos > 0 {
        return Ok(nanos);
    }
    let why = if key == "backoff" {
        "retries would run back to back"
    } else {
        "no handler finishes in no time"
    };
    Err(syn::Error::new_spanned(
        value,
        format!("`{key}` must be greater than zero: {why}; write e.g. `{key} = 1` or `{key} = \"500ms\"`"),
    ))
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
    if matches!(key, "retry" | "max_retries" | "attempts") {
        return format!("unknown key `{key}`; did you mean `retries`?");
    }
    let unsupported = match key {
        "idle" => Some("kopf's `idle` is not supported: a timer here runs every `interval` while its resource exists"),
        "sharp" => Some("kopf's `sharp` is not supported: a timer's interval counts from the end of its previous run"),
        "value" => Some(
            "kopf's `value` is not supported: use `when = FN` with a function that checks the field, e.g. \
             `fn big(body: &serde_json::Value) -> bool { body[\"spec\"][\"size\"] == 3 }`",
        ),
        "errors" => Some(
            "kopf's `errors=` is not supported: return `Error::permanent(...)` for a failure never to retry, \
             and `Error::temporary(..., delay)` for one to retry after that delay; other errors are retried with the `backoff`",
        ),
        "param" => Some("`param` is not supported: keep per-handler settings in the memo or in a constant"),
        "delay" => Some("`delay` is not supported here: did you mean `initial_delay` (timers only)?"),
        "group" | "version" | "plural" | "kind" | "resource" => Some(
            "the resource is the trigger's value, not a separate key: write e.g. `event = \"kopfexamples.kopf.dev\"` or `event = \"KopfExample\"`",
        ),
        "resume" => Some(
            "kopf's `on.resume` is not supported: every existing resource arrives as a `create` event when the operator starts",
        ),
        "daemon" => Some(
            "kopf's daemons are not supported: use `timer = \"KIND\", interval = N`, or start a task in a `startup` handler",
        ),
        "old" | "new" | "diff" => Some(
            "`old`, `new` and `diff` are parameters, not keys: add e.g. `diff: &Diff` to an update handler's parameters",
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
    fn resume_triggers_and_optional_deletes() {
        let (args, errors) = parse(quote!(resume = "KopfExample", retries = 2));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.trigger.unwrap().kind, TriggerKind::Resume);
        let (args, errors) = parse(quote!(delete = "ConfigMap", optional));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(args.optional);
        let (_, errors) = parse(quote!(timer = "ConfigMap", interval = 1, optional));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("`optional` applies to delete handlers"),
            "{errors:?}"
        );
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
            ("value", "use `when = FN`"),
            ("diff", "are parameters, not keys"),
            ("errors", "kopf's `errors=` is not supported"),
            ("retry", "did you mean `retries`?"),
            ("plural", "the resource is the trigger's value"),
            ("daemon", "daemons are not supported"),
        ] {
            let key = syn::Ident::new(key, Span::call_site());
            let (_, errors) = parse(quote!(event = "A", #key = 1));
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(expected), "{key}: {errors:?}");
        }
    }

    #[test]
    fn retry_keys_are_parsed() {
        let (args, errors) = parse(quote!(
            create = "KopfExample",
            retries = 5,
            backoff = "2s",
            timeout = "30s"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.retries, Some(5));
        assert_eq!(args.backoff, Some(2_000_000_000));
        assert_eq!(args.timeout, Some(30_000_000_000));
        assert!(args.timeout_span.is_some());
        let (args, errors) = parse(quote!(update = "KopfExample", retries = 0, backoff = 0.5, timeout = 1));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.retries, Some(0));
        assert_eq!(args.backoff, Some(500_000_000));
        assert_eq!(args.timeout, Some(1_000_000_000));
        let (args, errors) = parse(quote!(delete = "KopfExample", retries = 4294967295, backoff = "1h30m"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.retries, Some(u32::MAX));
        assert_eq!(args.backoff, Some(5_400_000_000_000));
        assert_eq!((args.timeout, args.timeout_span.is_some()), (None, false));
        // Left out: the runtime's defaults.
        let (args, _) = parse(quote!(create = "KopfExample"));
        assert_eq!((args.retries, args.backoff, args.timeout), (None, None, None));
    }

    #[test]
    fn timeout_is_allowed_on_event_handlers_and_timers() {
        for args in [
            quote!(event = "KopfExample", timeout = 5),
            quote!(timer = "KopfExample", interval = 10, timeout = "1s"),
        ] {
            let (args, errors) = parse(args);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(args.timeout.is_some(), args.timeout_span.is_some());
        }
    }

    #[test]
    fn retries_and_backoff_only_on_create_update_delete() {
        for (args, expected) in [
            (
                quote!(event = "A", retries = 3),
                "`retries` applies to create, update and delete handlers: an `event` handler is fire-and-forget (kopf's `on.event`) and is not retried; use `create = \"KIND\"`, `update = \"KIND\"` or `delete = \"KIND\"` to retry",
            ),
            (
                quote!(event = "A", backoff = "2s"),
                "`backoff` applies to create, update and delete handlers: an `event` handler",
            ),
            (
                quote!(timer = "A", interval = 1, backoff = 1),
                "`backoff` applies to create, update and delete handlers: a timer is not retried, it simply runs again at its next tick",
            ),
            (quote!(timer = "A", interval = 1, retries = 1), "a timer is not retried"),
            (
                quote!(startup, retries = 1),
                "a startup handler is not retried, if it fails the operator stops",
            ),
            (
                quote!(cleanup, backoff = 1),
                "a cleanup handler runs once, at shutdown, and is not retried",
            ),
            (
                quote!(startup, timeout = 1),
                "`timeout` applies to resource handlers (event, create, update, delete and timer), not to a startup handler",
            ),
            (quote!(cleanup, timeout = "1s"), "not to a cleanup handler"),
        ] {
            let (_, errors) = parse(args);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0].starts_with(expected) || errors[0].contains(expected),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn every_misplaced_retry_key_is_reported_at_once() {
        let (_, errors) = parse(quote!(timer = "A", retries = 2, interval = 1, backoff = "1s"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("`retries` applies"), "{errors:?}");
        assert!(errors[1].starts_with("`backoff` applies"), "{errors:?}");
        let (_, errors) = parse(quote!(startup, retries = 1, backoff = 1, timeout = 1));
        assert_eq!(errors.len(), 3, "{errors:?}");
        // A bad value and a bad place are two mistakes.
        let (_, errors) = parse(quote!(event = "A", retries = -1));
        assert_eq!(errors.len(), 2, "{errors:?}");
        // Two triggers: that conflict comes first, not what follows from either.
        let (_, errors) = parse(quote!(event = "A", create = "A", retries = 1));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("one trigger"), "{errors:?}");
    }

    #[test]
    fn bad_retry_values_say_what_to_write() {
        for (args, expected) in [
            (
                quote!(create = "A", retries = -1),
                "`retries` must not be negative: write the number of retries",
            ),
            (quote!(create = "A", retries = 1.5), "`retries` is a whole number"),
            (
                quote!(create = "A", retries = "3"),
                "`retries` is a number, not a string: write `retries = 3`",
            ),
            (
                quote!(create = "A", retries = "many"),
                "expected a whole number for `retries`",
            ),
            (quote!(create = "A", retries = MAX), "`retries` must be a literal"),
            (quote!(create = "A", retries = u32::MAX), "cannot evaluate `u32::MAX`"),
            (
                quote!(create = "A", retries = 4294967296),
                "`retries` is too large: at most 4294967295",
            ),
            (quote!(create = "A", retries), "`retries` needs a value: `retries = 5`"),
            (quote!(create = "A", backoff = 0), "`backoff` must be greater than zero"),
            (
                quote!(create = "A", timeout = "0s"),
                "`timeout` must be greater than zero",
            ),
            (quote!(create = "A", backoff = -1), "`backoff` must not be negative"),
            (
                quote!(create = "A", timeout = "5 parsecs"),
                "invalid duration \"5 parsecs\" for `timeout`",
            ),
            (
                quote!(create = "A", timeout = true),
                "expected a number of seconds or a duration string for `timeout`",
            ),
            (quote!(create = "A", backoff), "`backoff` needs a value"),
        ] {
            let (_, errors) = parse(args);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(expected), "{expected}: {errors:?}");
        }
    }

    #[test]
    fn misspelled_retry_keys_are_suggested() {
        for (key, suggestion) in [("retires", "retries"), ("backof", "backoff"), ("timout", "timeout")] {
            let key = syn::Ident::new(key, Span::call_site());
            let (_, errors) = parse(quote!(create = "A", #key = 1));
            assert_eq!(errors, [format!("unknown key `{key}`; did you mean `{suggestion}`?")]);
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
