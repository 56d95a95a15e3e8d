//! Rules that relate the attribute to the function: what each kind of handler may ask for, and
//! what needs `async`.

use crate::args::TriggerKind;
use crate::errors::Errors;
use crate::sig::{Injectable, Param};
use syn::{Attribute, ItemFn};

/// What a handler of this kind can ask for.
pub(crate) fn available(kind: TriggerKind) -> &'static [Injectable] {
    use Injectable::*;
    match kind {
        TriggerKind::Event | TriggerKind::Create | TriggerKind::Update | TriggerKind::Delete => {
            &[Memo, Name, Namespace, Uid, Body, Event, Logger, Shared]
        }
        TriggerKind::Timer => &[Memo, Name, Namespace, Uid, Body, Logger, Shared],
        TriggerKind::Startup | TriggerKind::Cleanup => &[Memo, Logger, Shared],
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
