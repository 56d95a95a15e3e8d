//! Generates the wrapper that fetches a handler's injectables and calls it, and the registration
//! submitted to the runtime's inventory.

use crate::args::{HandlerArgs, TriggerKind};
use crate::filters::Filters;
use crate::sig::{Injectable, Param};
use proc_macro2::Ident;
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{ExprPath, ItemFn, LitStr, ReturnType, Type};

/// The items added beside a `#[handler]` function, all inside one hidden named `const` (see
/// [`hidden_name`]).
pub(crate) fn handler(func: &ItemFn, args: &HandlerArgs, params: &[Param]) -> TokenStream {
    let ident = &func.sig.ident;
    let wrapper = wrapper(func, params, Mode::Call);
    let memo_type = memo_type(params);
    let (id, explicit_id) = match &args.id {
        Some(id) => (quote!(#id), true),
        None => (
            quote!(::core::concat!(
                ::core::module_path!(),
                "::",
                ::core::stringify!(#ident)
            )),
            false,
        ),
    };
    let trigger = trigger(args);
    let location = location(func);
    let invoke = invoke_kind(func);
    let component = match &args.component {
        Some(component) => quote!(::core::option::Option::Some(#component)),
        None => quote!(::core::option::Option::None),
    };
    let uses = |injectable| params.iter().any(|param| param.injectable == injectable);
    let uses_shared = uses(Injectable::Shared);
    let uses_labels = uses(Injectable::Labels);
    let uses_annotations = uses(Injectable::Annotations);
    let uses_patch = uses(Injectable::Patch);
    let uses_recorder = uses(Injectable::Recorder);
    let uses_client = uses(Injectable::Client);
    let optional = args.optional;
    let retry = retry(args);
    let when = when_check(args.filters.when.as_ref());
    let filters = filters(&args.filters);
    hidden_const(
        hidden_name(func, args.id.as_ref(), "handler"),
        quote! {
            #wrapper
            #when
            ::memo_runtime::__private::inventory::submit! {
                ::memo_runtime::__private::Registration {
                    id: #id,
                    explicit_id: #explicit_id,
                    module_path: ::core::module_path!(),
                    #location
                    trigger: #trigger,
                    memo_type: #memo_type,
                    component: #component,
                    uses_shared: #uses_shared,
                    uses_labels: #uses_labels,
                    uses_annotations: #uses_annotations,
                    uses_patch: #uses_patch,
                    uses_recorder: #uses_recorder,
                    uses_client: #uses_client,
                    optional: #optional,
                    invoke: ::memo_runtime::__private::Invoke::#invoke(__memo_wrapper),
                    retry: #retry,
                    filters: #filters,
                }
            }
        },
    )
}

/// `when = path` as a `fn(&Value) -> bool`, spanned on the path: a path to anything else is the
/// compiler's type error there.
fn when_check(when: Option<&ExprPath>) -> TokenStream {
    let Some(path) = when else {
        return TokenStream::new();
    };
    quote_spanned! {path.span()=>
        const __MEMO_WHEN: ::memo_runtime::__private::When = #path;
    }
}

/// The `Filters` of the registration: what the attribute gives, `None` for the rest.
fn filters(filters: &Filters) -> TokenStream {
    let some = |text: Option<&LitStr>| match text {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    };
    let labels = some(filters.labels.as_ref());
    let annotations = some(filters.annotations.as_ref());
    let field = some(filters.field.as_ref());
    let when = match filters.when {
        Some(_) => quote!(::core::option::Option::Some(__MEMO_WHEN)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::memo_runtime::__private::Filters {
            labels: #labels,
            annotations: #annotations,
            when: #when,
            field: #field,
        }
    }
}

/// The `RetryPolicy`: what the attribute gives, the runtime's defaults for the rest.
fn retry(args: &HandlerArgs) -> TokenStream {
    let default = quote!(::memo_runtime::__private::RetryPolicy::DEFAULT);
    let retries = match args.retries {
        Some(retries) => quote!(::core::option::Option::Some(#retries)),
        None => quote!(#default.retries),
    };
    let backoff = match args.backoff {
        Some(nanos) => quote!(::memo_runtime::__private::Duration::from_nanos(#nanos)),
        None => quote!(#default.backoff),
    };
    let timeout = match args.timeout {
        Some(nanos) => quote!(::core::option::Option::Some(::memo_runtime::__private::Duration::from_nanos(#nanos))),
        None => quote!(#default.timeout),
    };
    quote! {
        ::memo_runtime::__private::RetryPolicy { retries: #retries, backoff: #backoff, timeout: #timeout }
    }
}

/// What the generated code is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The real wrapper: fetch the injectables, call the handler, convert its result.
    Call,
    /// Only type-check the injectables' and the result's types, when the macro already found
    /// errors: the compiler then reports its own errors (a wrong parameter type, an unsupported
    /// return type) in the same build, and nothing refers to the function.
    CheckOnly,
}

/// The items added beside a function the macro rejected, so that the compiler still checks what
/// only it can check. `check_output` is false when the return type itself was rejected.
/// Its hidden `const` has a name of its own (`__MEMO_CHECKS_...`), unlike the real registration,
/// so that it never clashes with the expansion of a second attribute on the same function.
/// A `when` filter's type is checked there too.
pub(crate) fn checks(
    func: &ItemFn,
    params: &[Param],
    check_output: bool,
    when: Option<&ExprPath>,
    what: &str,
) -> TokenStream {
    let check_output = check_output && matches!(func.sig.output, ReturnType::Type(..));
    if params.is_empty() && !check_output && when.is_none() {
        return TokenStream::new();
    }
    let when = when_check(when);
    let check = wrapper(func, params, Mode::CheckOnly);
    let output_check = if check_output {
        let (ret, span) = output(func);
        let into_outcome = quote_spanned!(span=> <#ret as ::memo_runtime::__private::IntoOutcome>::into_outcome);
        quote! {
            fn __memo_check_output(output: #ret) -> ::memo_runtime::__private::Outcome {
                #into_outcome(output)
            }
        }
    } else {
        TokenStream::new()
    };
    hidden_const(
        hidden_name(func, None, &format!("checks_{what}")),
        quote!(#check #output_check #when),
    )
}

/// `#[doc(hidden)] const NAME: () = { ... };`, spanned where the name is (so that a duplicate is
/// reported there).
fn hidden_const(name: Ident, body: TokenStream) -> TokenStream {
    quote_spanned! {name.span()=>
        #[doc(hidden)]
        const #name: () = {
            #body
        };
    }
}

/// The name of the hidden `const` that holds a function's generated items.
///
/// It is named, not `_`, so that the expansion is also valid inside an `impl` block; there the
/// wrapper cannot name the function (it is an associated function), and the compiler reports
/// "cannot find function `NAME` in this scope" on the function's name.
///
/// With an explicit `id`, the name is derived from the id, spanned on the id: two handlers with
/// the same id in one module then define the same name, and the compiler reports "the name
/// `__MEMO_HANDLER_ID_PING` is defined multiple times", pointing at both ids.
///
/// The name needs no `#[allow]`, which a crate's `#![forbid(...)]` would reject: it is upper case
/// (`non_upper_case_globals`), and its leading `_` exempts it from `dead_code`.
pub(crate) fn hidden_name(func: &ItemFn, id: Option<&LitStr>, what: &str) -> Ident {
    let what = what.to_ascii_uppercase();
    match id {
        Some(id) => Ident::new(&format!("__MEMO_{what}_ID_{}", upper_case(&id.value())), id.span()),
        None => {
            let ident = func.sig.ident.unraw().to_string();
            Ident::new(
                &format!("__MEMO_{what}_FN_{}", upper_case(&ident)),
                func.sig.ident.span(),
            )
        }
    }
}

/// A name or id as the upper-case tail of an identifier, one-to-one: lower-case ASCII letters
/// become upper case and digits stay, `_` doubles, an upper-case letter `L` becomes `_UL`, and any
/// other character becomes `_X`, its UTF-8 bytes in hex, and `_`.
fn upper_case(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'a'..='z' => escaped.push(c.to_ascii_uppercase()),
            '0'..='9' => escaped.push(c),
            'A'..='Z' => {
                escaped.push_str("_U");
                escaped.push(c);
            }
            '_' => escaped.push_str("__"),
            other => {
                escaped.push_str("_X");
                let mut buffer = [0; 4];
                for byte in other.encode_utf8(&mut buffer).bytes() {
                    escaped.push_str(&format!("{byte:02X}"));
                }
                escaped.push('_');
            }
        }
    }
    escaped
}

fn invoke_kind(func: &ItemFn) -> proc_macro2::Ident {
    if func.sig.asyncness.is_some() {
        format_ident!("Async")
    } else {
        format_ident!("Sync")
    }
}

/// `file`, `line` and `column` of the attribute that registered the function.
fn location(func: &ItemFn) -> TokenStream {
    let span = func.sig.fn_token.span;
    quote_spanned! {span=>
        file: ::core::file!(),
        line: ::core::line!(),
        column: ::core::column!(),
    }
}

fn trigger(args: &HandlerArgs) -> TokenStream {
    let Some(trigger) = &args.trigger else {
        return quote!(::memo_runtime::__private::Trigger::Startup);
    };
    let resource = &trigger.resource;
    let event = |filter: &str| {
        let filter = format_ident!("{filter}");
        quote! {
            ::memo_runtime::__private::Trigger::Event {
                resource: #resource,
                filter: ::memo_runtime::__private::EventFilter::#filter,
            }
        }
    };
    match trigger.kind {
        TriggerKind::Event => event("Any"),
        TriggerKind::Create => event("Added"),
        TriggerKind::Update => event("Modified"),
        TriggerKind::Delete => event("Deleted"),
        TriggerKind::Resume => event("Resume"),
        TriggerKind::Timer => {
            let interval = args.interval.unwrap_or(1);
            let initial_delay = args.initial_delay.unwrap_or(0);
            quote! {
                ::memo_runtime::__private::Trigger::Timer {
                    resource: #resource,
                    interval: ::memo_runtime::__private::Duration::from_nanos(#interval),
                    initial_delay: ::memo_runtime::__private::Duration::from_nanos(#initial_delay),
                }
            }
        }
        TriggerKind::Startup => quote!(::memo_runtime::__private::Trigger::Startup),
        TriggerKind::Cleanup => quote!(::memo_runtime::__private::Trigger::Cleanup),
    }
}

/// The memo type the handler asks for, if it asks for one, for the startup check against the
/// operator's memo type.
///
/// For `&M` and `&mut M` this is `M` itself, read from the syntax, so that a type that cannot be a
/// memo is reported once (by the wrapper's fetch), not a second time here. Only a type alias with
/// a lifetime (`type M<'a> = &'a mut Memo;`) needs the compiler to find `M`; any other type that
/// is not a reference is an error of the wrapper's fetch already, and has no memo type.
fn memo_type(params: &[Param]) -> TokenStream {
    let Some(param) = params.iter().find(|param| param.injectable == Injectable::Memo) else {
        return quote!(::core::option::Option::None);
    };
    let ty = &param.ty;
    let of = match referent(ty) {
        Some(memo) => quote!(::memo_runtime::__private::MemoType::of::<#memo>()),
        None if has_lifetime(ty.to_token_stream()) => quote!(::memo_runtime::__private::memo_type_of::<#ty>()),
        None => return quote!(::core::option::Option::None),
    };
    quote! {
        ::core::option::Option::Some({
            fn __memo_type() -> ::memo_runtime::__private::MemoType {
                #of
            }
            __memo_type
        })
    }
}

fn has_lifetime(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Punct(punct) => punct.as_char() == '\'',
        proc_macro2::TokenTree::Group(group) => has_lifetime(group.stream()),
        _ => false,
    })
}

/// `M` in `&M` or `&mut M`, seeing through parentheses and macro groups.
fn referent(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Reference(reference) => Some(&reference.elem),
        Type::Paren(inner) => referent(&inner.elem),
        Type::Group(inner) => referent(&inner.elem),
        _ => None,
    }
}

/// The type the handler's result is converted from, and where errors about it point.
fn output(func: &ItemFn) -> (TokenStream, proc_macro2::Span) {
    match &func.sig.output {
        ReturnType::Default => (quote!(()), func.sig.ident.span()),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    }
}

fn wrapper(func: &ItemFn, params: &[Param], mode: Mode) -> TokenStream {
    let ident = &func.sig.ident;
    let is_async = func.sig.asyncness.is_some() && mode == Mode::Call;
    let on_error = if is_async {
        quote!(::memo_runtime::__private::injection_failed_async)
    } else {
        quote!(::memo_runtime::__private::injection_failed)
    };
    let vars: Vec<_> = (0..params.len())
        .map(|index| format_ident!("__memo_arg{index}"))
        .collect();
    let fetches = params.iter().zip(&vars).map(|(param, var)| {
        let ty = &param.ty;
        let (trait_name, source) = match param.injectable {
            Injectable::Memo => ("MemoArg", quote!(&mut *__cx.memo)),
            Injectable::Name => ("NameArg", quote!(__env)),
            Injectable::Namespace => ("NamespaceArg", quote!(__env)),
            Injectable::Uid => ("UidArg", quote!(__env)),
            Injectable::Body => ("BodyArg", quote!(__env)),
            Injectable::Event => ("EventArg", quote!(__env)),
            Injectable::Logger => ("LoggerArg", quote!(__env)),
            Injectable::Shared => ("SharedArg", quote!(__cx.shared)),
            Injectable::Spec => ("SpecArg", quote!(__env)),
            Injectable::Status => ("StatusArg", quote!(__env)),
            Injectable::Labels => ("LabelsArg", quote!(__cx.labels)),
            Injectable::Annotations => ("AnnotationsArg", quote!(__cx.annotations)),
            Injectable::Old => ("OldArg", quote!(__cx.seen)),
            Injectable::New => ("NewArg", quote!(__cx.seen)),
            Injectable::Diff => ("DiffArg", quote!(__cx.seen)),
            Injectable::Patch => ("PatchArg", quote!(__cx.patch.as_deref_mut())),
            Injectable::Recorder => ("RecorderArg", quote!(__cx.recorder)),
            Injectable::Client => ("ClientArg", quote!(__env)),
            Injectable::Retry => ("RetryArg", quote!(__cx.retry)),
            Injectable::Fence => ("FenceArg", quote!(__env)),
        };
        let trait_ident = format_ident!("{trait_name}");
        let fetch = quote_spanned!(ty.span()=> <#ty as ::memo_runtime::__private::#trait_ident<'_>>::inject);
        quote! {
            let #var = match #fetch(#source) {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(error) => return #on_error(error),
            };
        }
    });
    let (ret, output_span) = output(func);
    let into_outcome = quote_spanned!(output_span=> <#ret as ::memo_runtime::__private::IntoOutcome>::into_outcome);
    let env_binding = if params.iter().any(|param| {
        !matches!(
            param.injectable,
            Injectable::Memo
                | Injectable::Shared
                | Injectable::Labels
                | Injectable::Annotations
                | Injectable::Old
                | Injectable::New
                | Injectable::Diff
                | Injectable::Patch
                | Injectable::Recorder
                | Injectable::Retry
        )
    }) {
        quote!(let __env = __cx.env;)
    } else {
        quote!()
    };
    // The function, named through a local macro whose name says why it may not be found: inside
    // an `impl` block the function is an associated function, which the wrapper cannot name, and
    // the compiler's "cannot find function" then ends with "this error originates in the macro
    // `__memo_handler_must_be_a_free_function_not_in_an_impl_block`".
    let handler = quote_spanned! {ident.span()=>
        {
            macro_rules! __memo_handler_must_be_a_free_function_not_in_an_impl_block {
                () => { #ident };
            }
            __memo_handler_must_be_a_free_function_not_in_an_impl_block!()
        }
    };
    if mode == Mode::CheckOnly {
        return quote! {
            fn __memo_check(
                __cx: &mut ::memo_runtime::__private::Context<'_>,
            ) -> ::memo_runtime::__private::Outcome {
                #env_binding
                #(#fetches)*
                #(let _ = #vars;)*
                ::core::result::Result::Ok(())
            }
        };
    }
    if is_async {
        // The handler's own future is checked for `Send`, spanned on the function's name, so that
        // the compiler says "future returned by `NAME` is not `Send`" there and shows the value
        // held across an `.await`.
        let boxed = quote_spanned! {ident.span()=>
            fn __memo_handler_future_must_be_send<F: ::core::future::Future + ::core::marker::Send>(future: F) -> F {
                future
            }
            let __memo_future = __memo_handler_future_must_be_send(#handler(#(#vars),*));
            ::memo_runtime::__private::boxed_handler_future(async move { #into_outcome(__memo_future.await) })
        };
        quote! {
            fn __memo_wrapper<'__a, '__b>(
                __cx: &'__a mut ::memo_runtime::__private::Context<'__b>,
            ) -> ::memo_runtime::__private::BoxFuture<'__a, ::memo_runtime::__private::Outcome> {
                #env_binding
                #(#fetches)*
                #boxed
            }
        }
    } else {
        quote! {
            fn __memo_wrapper(
                __cx: &mut ::memo_runtime::__private::Context<'_>,
            ) -> ::memo_runtime::__private::Outcome {
                #env_binding
                #(#fetches)*
                #into_outcome(#handler(#(#vars),*))
            }
        }
    }
}

/// The items added beside a `#[prepare_memory]` function.
pub(crate) fn preparer(func: &ItemFn, component: Option<&LitStr>, params: &[Param]) -> TokenStream {
    let ident = &func.sig.ident;
    let wrapper = wrapper(func, params, Mode::Call);
    let component = match component {
        Some(component) => quote!(::core::option::Option::Some(#component)),
        None => quote!(::core::option::Option::None),
    };
    let location = location(func);
    hidden_const(
        hidden_name(func, None, "preparer"),
        quote! {
            #wrapper
            ::memo_runtime::__private::inventory::submit! {
                ::memo_runtime::__private::Preparer {
                    id: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    module_path: ::core::module_path!(),
                    #location
                    component: #component,
                    invoke: __memo_wrapper,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sig::{Injectable, Param};
    use syn::parse_quote;

    fn param(injectable: Injectable, ty: Type) -> Param {
        Param {
            injectable,
            ident: format_ident!("{}", injectable.name()),
            ty,
        }
    }

    #[test]
    fn hidden_names_are_upper_case_and_one_to_one() {
        let func: ItemFn = parse_quote!(
            fn r#pinged_2() {}
        );
        assert_eq!(hidden_name(&func, None, "handler"), "__MEMO_HANDLER_FN_PINGED__2");
        let id: LitStr = parse_quote!("per-name");
        assert_eq!(
            hidden_name(&func, Some(&id), "handler"),
            "__MEMO_HANDLER_ID_PER_X2D_NAME"
        );
        let ids = [
            "ping",
            "Ping",
            "PING",
            "p_ing",
            "p-ing",
            "p_X2D_ing",
            "p__ing",
            "pïng",
            "_",
            "__",
            "UPING",
        ];
        let names: std::collections::HashSet<String> = ids.iter().map(|id| upper_case(id)).collect();
        assert_eq!(names.len(), ids.len(), "{names:?}");
        for name in &names {
            assert!(!name.chars().any(|c| c.is_ascii_lowercase()), "{name}");
            assert!(
                syn::parse_str::<Ident>(&format!("__MEMO_HANDLER_ID_{name}")).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn memo_type_comes_from_the_referent() {
        let of = |ty: Type| memo_type(&[param(Injectable::Memo, ty)]).to_string().replace(' ', "");
        assert!(of(parse_quote!(&mut Memo)).contains("MemoType::of::<Memo>()"));
        assert!(of(parse_quote!(&(Context))).contains("MemoType::of::<(Context)>()"));
        assert!(of(parse_quote!(Alias<'_>)).contains("memo_type_of::<Alias<'_>>()"));
        // Not a reference: the fetch reports it; no second error from here.
        assert_eq!(of(parse_quote!(Memo)), "::core::option::Option::None");
        assert_eq!(
            memo_type(&[]).to_string().replace(' ', ""),
            "::core::option::Option::None"
        );
    }

    #[test]
    fn checks_only_when_there_is_something_to_check() {
        let func: ItemFn = parse_quote!(
            fn pinged() {}
        );
        assert!(checks(&func, &[], true, None, "handler").is_empty());
        let func: ItemFn = parse_quote!(
            fn pinged(name: u32) -> String {
                String::new()
            }
        );
        let params = [param(Injectable::Name, parse_quote!(u32))];
        let generated = checks(&func, &params, true, None, "handler").to_string();
        assert!(generated.contains("__MEMO_CHECKS_HANDLER_FN_PINGED"), "{generated}");
        assert!(generated.contains("NameArg"), "{generated}");
        assert!(generated.contains("IntoOutcome"), "{generated}");
        assert!(
            !generated.contains("pinged ("),
            "the function is never called: {generated}"
        );
        let generated = checks(&func, &params, false, None, "handler").to_string();
        assert!(!generated.contains("IntoOutcome"), "{generated}");
    }

    #[test]
    fn async_futures_are_checked_for_send_on_the_handler() {
        let func: ItemFn = parse_quote!(
            async fn pinged() {}
        );
        let generated = wrapper(&func, &[], Mode::Call).to_string();
        assert!(
            generated.contains("__memo_handler_future_must_be_send ({"),
            "{generated}"
        );
    }

    #[test]
    fn the_handler_is_named_through_a_macro_that_explains_a_failure() {
        let func: ItemFn = parse_quote!(
            fn pinged() {}
        );
        let generated = wrapper(&func, &[], Mode::Call).to_string();
        let explained = "__memo_handler_must_be_a_free_function_not_in_an_impl_block { () => { pinged } ; }";
        assert!(generated.contains(explained), "{generated}");
    }
}
