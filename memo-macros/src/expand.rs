//! The two attributes, start to finish: parse, check, generate. On any error the user's item is
//! emitted unchanged beside every error found, so the rest of the crate still type-checks and
//! IDE completion keeps working.

use crate::args::{self, TriggerKind};
use crate::check;
use crate::codegen;
use crate::errors::Errors;
use crate::sig::{self, Availability, Injectable};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ItemFn;

/// `#[handler(...)]`.
pub(crate) fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let parsed = args::parse_handler(args, &mut errors);
    let Some(func) = function(&item, "#[handler]", &mut errors) else {
        return with_errors(item, errors);
    };
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
    let (params, output_checkable) = read_signature(&func, "#[handler]", &availability, &mut errors);
    check::shared_needs_async(&func, &params, &mut errors);
    check::timeout_needs_async(&func, &parsed, &mut errors);
    if !errors.is_empty() {
        let checks = Checks {
            params: &params,
            output_checkable,
            when: parsed.filters.when.as_ref(),
        };
        return rejected(item, &func, &checks, "handler", errors);
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
    let availability = Availability {
        injectables: &[Injectable::Shared],
        what: "a memory preparer",
    };
    let (params, output_checkable) = read_signature(&func, "#[prepare_memory]", &availability, &mut errors);
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
        let checks = Checks {
            params: &params,
            output_checkable,
            when: None,
        };
        return rejected(item, &func, &checks, "preparer", errors);
    }
    let generated = codegen::preparer(&func, component.as_ref(), &params);
    quote!(#func #generated)
}

/// The checks both attributes make of the function: one attribute only, a plain `fn`, parameters
/// this kind of function can receive, a supported return type. Returns the parameters and whether
/// the return type can still be type-checked.
fn read_signature(
    func: &ItemFn,
    attribute: &str,
    availability: &Availability<'_>,
    errors: &mut Errors,
) -> (Vec<sig::Param>, bool) {
    check::single_attribute(func, errors);
    sig::check_function(&func.sig, attribute, errors);
    let params = sig::params(&func.sig, availability, errors);
    let output_checkable = sig::check_return(&func.sig, errors);
    (params, output_checkable)
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

/// A function with errors: the item unchanged, the errors, and the type checks that only the
/// compiler can make (parameter and return types, a `when` filter's), so that all are reported in
/// one build.
///
/// The type checks are left out where they could only add noise: when the function is generic or
/// takes `self` (its types may name what the checks cannot see), and when another memo attribute
/// follows (its own expansion checks the same types).
fn rejected(item: TokenStream, func: &ItemFn, checks: &Checks<'_>, what: &str, errors: Errors) -> TokenStream {
    let sig = &func.sig;
    let checkable = sig.generics.params.is_empty()
        && sig.generics.where_clause.is_none()
        && !sig.inputs.iter().any(|input| matches!(input, syn::FnArg::Receiver(_)))
        && !check::has_memo_attribute(func);
    let generated = if checkable {
        codegen::checks(func, checks.params, checks.output_checkable, checks.when, what)
    } else {
        TokenStream::new()
    };
    let errors = errors.into_compile_errors();
    quote!(#item #generated #errors)
}

/// What the compiler can still check of a rejected function.
struct Checks<'a> {
    params: &'a [sig::Param],
    /// Whether the return type can be type-checked.
    output_checkable: bool,
    /// A `when` filter's path, whose type is checked too.
    when: Option<&'a syn::ExprPath>,
}

fn with_errors(item: TokenStream, errors: Errors) -> TokenStream {
    let errors = errors.into_compile_errors();
    quote!(#item #errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        handler(args, item).to_string()
    }

    #[test]
    fn a_valid_handler_is_emitted_with_its_registration() {
        let out = expand(
            quote!(event = "KopfExample", id = "ping"),
            quote!(
                fn pinged(memo: &mut Memo) {}
            ),
        );
        assert!(out.starts_with("fn pinged (memo : & mut Memo) { }"), "{out}");
        assert!(out.contains("const __MEMO_HANDLER_ID_PING : () ="), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
        let out = prepare_memory(
            quote!(),
            quote!(
                async fn prepare(shared: &Shared) {}
            ),
        )
        .to_string();
        assert!(out.contains("const __MEMO_PREPARER_FN_PREPARE : () ="), "{out}");
    }

    #[test]
    fn filters_are_registered_and_when_is_type_checked() {
        let out = expand(
            quote!(
                update = "KopfExample",
                labels = "tier=web",
                when = crate::is_big,
                field = "spec.size"
            ),
            quote!(
                fn resized(diff: &Diff, labels: &Labels) {}
            ),
        )
        .replace(' ', "");
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("const__MEMO_WHEN:::memo_runtime::__private::When=crate::is_big;"),
            "{out}"
        );
        for field in [
            "labels:::core::option::Option::Some(\"tier=web\")",
            "annotations:::core::option::Option::None",
            "when:::core::option::Option::Some(__MEMO_WHEN)",
            "field:::core::option::Option::Some(\"spec.size\")",
            "uses_labels:true",
            "uses_annotations:false",
            "DiffArg",
            "__cx.seen",
        ] {
            assert!(out.contains(field), "{field}: {out}");
        }
        // Rejected for another reason, the `when` path is still type-checked.
        let out = expand(
            quote!(update = "KopfExample", when = is_big),
            quote!(
                fn resized(nmae: &str) {}
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("__MEMO_WHEN"), "{out}");
    }

    #[test]
    fn a_rejected_handler_keeps_the_item_and_adds_type_checks() {
        let out = expand(
            quote!(evnt = "X"),
            quote!(
                fn pinged(name: u32) -> String {
                    String::new()
                }
            ),
        );
        assert!(out.starts_with("fn pinged (name : u32) -> String"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("__MEMO_CHECKS_HANDLER_FN_PINGED"), "{out}");
        assert!(!out.contains("inventory"), "nothing is registered: {out}");
    }

    #[test]
    fn no_type_checks_where_they_could_only_add_noise() {
        for item in [
            quote!(
                fn pinged<M>(memo: &mut M) {}
            ),
            quote!(
                fn pinged(&self, memo: &mut Memo) {}
            ),
            quote!(
                fn pinged(memo: &mut Memo)
                where
                    u8: Copy,
                {
                }
            ),
            quote!(
                #[handler(startup)]
                fn pinged(memo: &mut Memo) {}
            ),
        ] {
            let out = expand(quote!(event = "KopfExample"), item);
            assert!(out.contains("compile_error"), "{out}");
            assert!(!out.contains("__MEMO_CHECKS"), "{out}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for (args, item) in [
            (
                quote!(=),
                quote!(
                    fn f() {}
                ),
            ),
            (quote!(event = "A"), quote!()),
            (
                quote!(event = "A"),
                quote!(
                    struct S;
                ),
            ),
            (quote!(event = "A"), quote!(fn)),
            (
                quote!(event),
                quote!(
                    fn f(...) {}
                ),
            ),
            (quote!(timer = "A", interval = "1 fortnight"), quote!(impl S {})),
        ] {
            let out = expand(args, item);
            assert!(out.contains("compile_error"), "{out}");
        }
    }
}
