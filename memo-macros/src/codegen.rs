//! Generates the wrapper that fetches a handler's injectables and calls it, and the registration
//! submitted to the runtime's inventory.

use crate::args::{HandlerArgs, TriggerKind};
use crate::sig::{Injectable, Param};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// The items added beside a `#[handler]` function, all inside one `const _: () = { ... };`.
pub(crate) fn handler(func: &ItemFn, args: &HandlerArgs, params: &[Param]) -> TokenStream {
    let ident = &func.sig.ident;
    let wrapper = wrapper(func, params);
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
    let uses_shared = params.iter().any(|param| param.injectable == Injectable::Shared);
    quote! {
        #[doc(hidden)]
        const _: () = {
            #wrapper
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
                    invoke: ::memo_runtime::__private::Invoke::#invoke(__memo_wrapper),
                }
            }
        };
    }
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
fn memo_type(params: &[Param]) -> TokenStream {
    match params.iter().find(|param| param.injectable == Injectable::Memo) {
        Some(param) => {
            let ty = &param.ty;
            quote! {
                ::core::option::Option::Some({
                    fn __memo_type() -> ::memo_runtime::__private::MemoType {
                        ::memo_runtime::__private::memo_type_of::<#ty>()
                    }
                    __memo_type
                })
            }
        }
        None => quote!(::core::option::Option::None),
    }
}

fn wrapper(func: &ItemFn, params: &[Param]) -> TokenStream {
    let ident = &func.sig.ident;
    let is_async = func.sig.asyncness.is_some();
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
    let output_span = match &func.sig.output {
        ReturnType::Default => ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let into_outcome = quote_spanned!(output_span=> ::memo_runtime::__private::IntoOutcome::into_outcome);
    let env_binding = if params
        .iter()
        .any(|param| !matches!(param.injectable, Injectable::Memo | Injectable::Shared))
    {
        quote!(let __env = __cx.env;)
    } else {
        quote!()
    };
    if is_async {
        let boxed = quote_spanned!(func.sig.ident.span()=> ::memo_runtime::__private::boxed_handler_future);
        quote! {
            fn __memo_wrapper<'__a, '__b>(
                __cx: &'__a mut ::memo_runtime::__private::Context<'__b>,
            ) -> ::memo_runtime::__private::BoxFuture<'__a, ::memo_runtime::__private::Outcome> {
                #env_binding
                #(#fetches)*
                #boxed(async move { #into_outcome(#ident(#(#vars),*).await) })
            }
        }
    } else {
        quote! {
            fn __memo_wrapper(
                __cx: &mut ::memo_runtime::__private::Context<'_>,
            ) -> ::memo_runtime::__private::Outcome {
                #env_binding
                #(#fetches)*
                #into_outcome(#ident(#(#vars),*))
            }
        }
    }
}

/// The items added beside a `#[prepare_memory]` function.
pub(crate) fn preparer(func: &ItemFn, component: Option<&syn::LitStr>, params: &[Param]) -> TokenStream {
    let ident = &func.sig.ident;
    let wrapper = wrapper(func, params);
    let component = match component {
        Some(component) => quote!(::core::option::Option::Some(#component)),
        None => quote!(::core::option::Option::None),
    };
    let location = location(func);
    quote! {
        #[doc(hidden)]
        const _: () = {
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
        };
    }
}
