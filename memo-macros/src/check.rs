//! Rules that relate the attribute to the function: what each kind of handler may ask for, and
//! what needs `async`.

use crate::args::{HandlerArgs, TriggerKind};
use crate::errors::Errors;
use crate::sig::{Injectable, Param};
use syn::{Attribute, ItemFn};

/// What a handler of this kind can ask for.
pub(crate) fn available(kind: TriggerKind) -> &'static [Injectable] {
    use Injectable::*;
    match kind {
        TriggerKind::Event => &[
            Memo,
            Name,
            Namespace,
            Uid,
            Body,
            Spec,
            Status,
            Labels,
            Annotations,
            Event,
            Logger,
            Shared,
            Patch,
            Recorder,
            Client,
            Fence,
        ],
        TriggerKind::Create | TriggerKind::Delete | TriggerKind::Resume => &[
            Memo,
            Name,
            Namespace,
            Uid,
            Body,
            Spec,
            Status,
            Labels,
            Annotations,
            Event,
            Logger,
            Shared,
            Patch,
            Recorder,
            Client,
            Retry,
            Fence,
        ],
        TriggerKind::Update => &[
            Memo,
            Name,
            Namespace,
            Uid,
            Body,
            Spec,
            Status,
            Labels,
            Annotations,
            Old,
            New,
            Diff,
            Event,
            Logger,
            Shared,
            Patch,
            Recorder,
            Client,
            Retry,
            Fence,
        ],
        TriggerKind::Timer => &[
            Memo,
            Name,
            Namespace,
            Uid,
            Body,
            Spec,
            Status,
            Labels,
            Annotations,
            Logger,
            Shared,
            Patch,
            Recorder,
            Client,
            Fence,
        ],
        TriggerKind::Startup | TriggerKind::Cleanup => &[Memo, Logger, Shared, Client],
    }
}

/// `shared` is an async API: a sync handler cannot use it.
pub(crate) fn shared_needs_async(func: &ItemFn, params: &[Param], errors: &mut Errors) {
    if func.sig.asyncness.is_none() && params.iter().any(|param| param.injectable == Injectable::Shared) {
        errors.spanned(
            func.sig.fn_token,
            "`shared` is only available to async handlers: its methods are `async` because the store may be remote; make it `async fn`",
        );
    }
}

/// `timeout` cancels a handler that runs too long: only an `async fn` can be cancelled.
pub(crate) fn timeout_needs_async(func: &ItemFn, args: &HandlerArgs, errors: &mut Errors) {
    let Some(span) = args.timeout_span else {
        return;
    };
    // On a startup or cleanup handler, `timeout` is already refused whatever the function.
    if args.trigger.as_ref().is_some_and(|trigger| !trigger.kind.is_resource()) {
        return;
    }
    if func.sig.asyncness.is_none() {
        errors.at(
            span,
            "`timeout` needs an `async fn`: a running sync `fn` cannot be cancelled; make the handler `async fn`, or drop `timeout`",
        );
    }
}

/// A function can carry one memo attribute only.
pub(crate) fn single_attribute(func: &ItemFn, errors: &mut Errors) {
    for attr in func.attrs.iter().filter(|attr| is_memo_attribute(attr)) {
        errors.spanned(
            attr,
            "a function can be registered once: remove this attribute, or write a separate function for each trigger",
        );
    }
}

/// Whether another memo attribute follows on the function.
pub(crate) fn has_memo_attribute(func: &ItemFn) -> bool {
    func.attrs.iter().any(is_memo_attribute)
}

fn is_memo_attribute(attr: &Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    matches!(
        segments.as_slice(),
        ["handler" | "prepare_memory"] | [.., "memo_runtime" | "prelude", "handler" | "prepare_memory"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;
    use syn::parse_quote;

    fn timeout_errors(args: proc_macro2::TokenStream, func: ItemFn) -> Vec<String> {
        let mut errors = Errors::default();
        let args = crate::args::parse_handler(args, &mut errors);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        timeout_needs_async(&func, &args, &mut errors);
        errors.messages()
    }

    #[test]
    fn timeout_needs_an_async_fn() {
        let sync: ItemFn = parse_quote!(
            fn provision() {}
        );
        let asynchronous: ItemFn = parse_quote!(
            async fn provision() {}
        );
        for args in [
            quote!(create = "KopfExample", timeout = "30s"),
            quote!(event = "KopfExample", timeout = 5),
            quote!(timer = "KopfExample", interval = 10, timeout = "1s"),
        ] {
            let errors = timeout_errors(args.clone(), sync.clone());
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with("`timeout` needs an `async fn`"), "{errors:?}");
            assert!(timeout_errors(args, asynchronous.clone()).is_empty());
        }
        // A sync handler without `timeout` is fine, retries or not.
        assert!(timeout_errors(quote!(update = "KopfExample", retries = 0), sync).is_empty());
    }

    #[test]
    fn no_second_error_where_timeout_is_already_refused() {
        let mut errors = Errors::default();
        let args = crate::args::parse_handler(quote!(startup, timeout = 5), &mut errors);
        assert_eq!(errors.messages().len(), 1);
        timeout_needs_async(
            &parse_quote!(
                fn start() {}
            ),
            &args,
            &mut errors,
        );
        assert_eq!(errors.messages().len(), 1, "{:?}", errors.messages());
    }
}
