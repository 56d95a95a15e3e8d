//! The two attributes, start to finish: parse, check, generate. On any error the user's item is
//! emitted unchanged beside every error found, so the rest of the crate still type-checks and
//! IDE completion keeps working.

use crate::args::{self, TriggerKind};
use crate::check;
use crate::codegen;
use crate::errors::Errors;
use crate::sig::{self, Availability, Injectable};
use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::ItemFn;

/// `#[handler(...)]`.
pub(crate) fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let parsed = args::parse_handler(args, &mut errors);
    let Some(func) = function(&item, "#[handler]", &mut errors) else {
        return with_errors(item, errors);
    };
    check::single_attribute(&func, &mut errors);
    sig::check_function(&func.sig, "#[handler]", &mut errors);
    // Without a valid trigger, check the parameters against the most permissive kind, so that
    // their own mistakes are still reported in the same pass.
    let kind = parsed
        .trigger
        .as_ref()
        .map_or(TriggerKind::Event, |trigger| trigger.kind);
    let availability = Availability {
        injectables: check::available(kind),
        what: kind.describe(),
    };
    let params = sig::params(&func.sig, &availability, &mut errors);
    check::shared_needs_async(&func, &params, &mut errors);
    if !errors.is_empty() {
        return with_errors(item, errors);
    }
    let generated = codegen::handler(&func, &parsed, &params);
    quote!(#func #generated)
}

/// `#[prepare_memory]` / `#[prepare_memory(component = "NAME")]`.
pub(crate) fn prepare_memory(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let component = args::parse_preparer(args, &mut errors);
    let Some(func) = function(&item, "#[prepare_memory]", &mut errors) else {
        return with_errors(item, errors);
    };
    check::single_attribute(&func, &mut errors);
    sig::check_function(&func.sig, "#[prepare_memory]", &mut errors);
    let availability = Availability {
        injectables: &[Injectable::Shared],
        what: "a memory preparer",
    };
    let params = sig::params(&func.sig, &availability, &mut errors);
    if func.sig.asyncness.is_none() {
        errors.spanned(
            func.sig.fn_token,
            "a memory preparer must be `async fn`: it fills the shared memory, whose methods are `async`",
        );
    }
    if !params.iter().any(|param| param.injectable == Injectable::Shared) && params.len() == func.sig.inputs.len() {
        errors.spanned(
            &func.sig.ident,
            "a memory preparer takes the shared memory to fill: add the parameter `shared: &Shared`",
        );
    }
    if !errors.is_empty() {
        return with_errors(item, errors);
    }
    let generated = codegen::preparer(&func, component.as_ref(), &params);
    quote!(#func #generated)
}

fn function(item: &TokenStream, attribute: &str, errors: &mut Errors) -> Option<ItemFn> {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => Some(func),
        Ok(other) => {
            errors.spanned(
                first_tokens(&other),
                format!("`{attribute}` can only be used on functions: write a `fn` or `async fn` that takes what it needs by parameter name"),
            );
            None
        }
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// The start of an item, up to its name, so the error underlines the declaration only.
fn first_tokens(item: &syn::Item) -> TokenStream {
    let tokens: Vec<_> = item.to_token_stream().into_iter().collect();
    let name_position = tokens
        .iter()
        .position(|token| matches!(token, proc_macro2::TokenTree::Ident(ident) if !is_keyword(&ident.to_string())))
        .map_or(tokens.len().min(2), |position| position + 1);
    tokens.into_iter().take(name_position).collect()
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "pub"
            | "crate"
            | "struct"
            | "enum"
            | "union"
            | "trait"
            | "impl"
            | "mod"
            | "const"
            | "static"
            | "type"
            | "use"
            | "extern"
            | "unsafe"
            | "in"
            | "super"
            | "self"
    )
}

fn with_errors(item: TokenStream, errors: Errors) -> TokenStream {
    let errors = errors.into_compile_errors();
    quote!(#item #errors)
}
