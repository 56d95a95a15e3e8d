//! Reads a handler's signature: which injectables it asks for (by parameter name), and whether
//! the function itself can be a handler.

use crate::errors::Errors;
use crate::suggest;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{FnArg, Ident, Pat, ReturnType, Signature, Type};

/// A value the runtime can hand to a handler, chosen by the parameter's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Injectable {
    Memo,
    Name,
    Namespace,
    Uid,
    Body,
    Event,
    Logger,
    Shared,
    Spec,
    Status,
    Labels,
    Annotations,
    Old,
    New,
    Diff,
    Patch,
    Recorder,
    Client,
    Retry,
    Fence,
}

impl Injectable {
    pub(crate) const ALL: [Injectable; 20] = [
        Injectable::Memo,
        Injectable::Name,
        Injectable::Namespace,
        Injectable::Uid,
        Injectable::Body,
        Injectable::Event,
        Injectable::Logger,
        Injectable::Shared,
        Injectable::Spec,
        Injectable::Status,
        Injectable::Labels,
        Injectable::Annotations,
        Injectable::Old,
        Injectable::New,
        Injectable::Diff,
        Injectable::Patch,
        Injectable::Recorder,
        Injectable::Client,
        Injectable::Retry,
        Injectable::Fence,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Injectable::Memo => "memo",
            Injectable::Name => "name",
            Injectable::Namespace => "namespace",
            Injectable::Uid => "uid",
            Injectable::Body => "body",
            Injectable::Event => "event",
            Injectable::Logger => "logger",
            Injectable::Shared => "shared",
            Injectable::Spec => "spec",
            Injectable::Status => "status",
            Injectable::Labels => "labels",
            Injectable::Annotations => "annotations",
            Injectable::Old => "old",
            Injectable::New => "new",
            Injectable::Diff => "diff",
            Injectable::Patch => "patch",
            Injectable::Recorder => "recorder",
            Injectable::Client => "client",
            Injectable::Retry => "retry",
            Injectable::Fence => "fence",
        }
    }

    /// An example of the accepted type, for messages.
    pub(crate) fn example(self) -> &'static str {
        match self {
            Injectable::Memo => "memo: &mut Memo",
            Injectable::Name => "name: &str",
            Injectable::Namespace => "namespace: Option<&str>",
            Injectable::Uid => "uid: &str",
            Injectable::Body => "body: &serde_json::Value",
            Injectable::Event => "event: &Event",
            Injectable::Logger => "logger: &Logger",
            Injectable::Shared => "shared: &Shared",
            Injectable::Spec => "spec: &serde_json::Value",
            Injectable::Status => "status: &serde_json::Value",
            Injectable::Labels => "labels: &Labels",
            Injectable::Annotations => "annotations: &Annotations",
            Injectable::Old => "old: &serde_json::Value",
            Injectable::New => "new: &serde_json::Value",
            Injectable::Diff => "diff: &Diff",
            Injectable::Patch => "patch: &mut Patch",
            Injectable::Recorder => "recorder: &Recorder",
            Injectable::Client => "client: &kube::Client",
            Injectable::Retry => "retry: u32",
            Injectable::Fence => "fence: Option<Fence>",
        }
    }

    /// Why this injectable is given to one kind of handler only, and how to get it, where a list
    /// of what else the handler could ask for would not help.
    fn restriction(self) -> Option<String> {
        match self {
            Injectable::Old | Injectable::New | Injectable::Diff => Some(format!(
                "`{}` is only given to `update` handlers: use `#[handler(update = \"…\")]`; it shows what changed \
                 since the last version handled",
                self.name()
            )),
            Injectable::Fence => Some(
                "`fence` is only given to handlers of a resource (`event`, `create`, `update`, `delete`, `resume`, \
                 `timer`): it is the lease held on the resource's bucket with `--shard auto`"
                    .to_owned(),
            ),
            Injectable::Patch | Injectable::Recorder => Some(format!(
                "`{}` is only given to handlers of a resource (`event`, `create`, `update`, `delete`, `timer`): \
                 a startup or cleanup handler has no object to {}; take `client: &kube::Client` and write with it",
                self.name(),
                if self == Injectable::Patch {
                    "patch"
                } else {
                    "post Events about"
                }
            )),
            Injectable::Retry => Some(
                "`retry` is only given to handlers that are retried (`create`, `update`, `delete`, `resume`): \
                 it counts this handler's retries for the event"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Injectable::ALL.into_iter().find(|injectable| injectable.name() == name)
    }
}

/// One handler parameter: what it asks for, its binding as written, and its type.
pub(crate) struct Param {
    pub(crate) injectable: Injectable,
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// What one kind of handler can ask for, and how messages name that kind.
pub(crate) struct Availability<'a> {
    pub(crate) injectables: &'a [Injectable],
    pub(crate) what: &'a str,
}

impl Availability<'_> {
    fn listed(&self) -> String {
        self.injectables
            .iter()
            .map(|injectable| format!("`{}`", injectable.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks everything about the signature that is not a parameter: qualifiers, generics, and
/// where-clauses. `attribute` names the macro for messages.
pub(crate) fn check_function(sig: &Signature, attribute: &str, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.spanned(
            constness,
            format!("`{attribute}` cannot be used on a `const fn`: remove `const`"),
        );
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        errors.spanned(
            unsafety,
            format!("`{attribute}` cannot be used on an `unsafe fn`: the runtime calls handlers from safe code; remove `unsafe` and use an `unsafe` block inside if needed"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!("`{attribute}` cannot be used on an `extern` function: remove the ABI"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "handlers cannot be variadic: remove `...`");
    }
    if !sig.generics.params.is_empty() {
        let only_lifetimes = sig
            .generics
            .params
            .iter()
            .all(|param| matches!(param, syn::GenericParam::Lifetime(_)));
        let message = if only_lifetimes {
            "handlers cannot declare lifetime parameters: remove them and let the lifetimes be elided (`name: &str`)"
        } else {
            "handlers cannot be generic: the runtime calls them with concrete types; remove the generic parameters"
        };
        errors.spanned(&sig.generics.params, message);
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(
            where_clause,
            "handlers cannot have a `where` clause: their parameter types are fixed; remove it",
        );
    }
}

/// Reads the parameters: each must be a plain name of an injectable available here, once.
pub(crate) fn params(sig: &Signature, available: &Availability<'_>, errors: &mut Errors) -> Vec<Param> {
    let mut params: Vec<Param> = Vec::new();
    for input in &sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                errors.spanned(
                    receiver,
                    "handlers are free functions and cannot take `self`: move the handler out of the `impl` block, and keep state in the memo",
                );
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            pattern => {
                errors.spanned(
                    pattern,
                    format!(
                        "handler parameters must be plain names: the name selects what is injected; write e.g. `{}`",
                        example_for_type(&typed.ty, available)
                    ),
                );
                continue;
            }
        };
        if let Some(self_type) = find_self(typed.ty.to_token_stream()) {
            errors.at(self_type.span(), SELF_IN_SIGNATURE);
            continue;
        }
        let written = ident.to_string();
        let written = written.strip_prefix("r#").unwrap_or(&written);
        let name = written.strip_prefix('_').unwrap_or(written);
        let Some(injectable) = Injectable::from_name(name) else {
            let hint = match suggest::closest(name, available.injectables.iter().map(|i| i.name())) {
                Some(suggestion) => format!("did you mean `{suggestion}`? "),
                None => String::new(),
            };
            errors.spanned(
                &ident,
                format!(
                    "`{written}` is not something {} can receive: {hint}parameters are chosen by name, and it can ask for {}",
                    available.what,
                    available.listed()
                ),
            );
            continue;
        };
        if !available.injectables.contains(&injectable) {
            let message = injectable.restriction().unwrap_or_else(|| {
                format!(
                    "`{}` is not available in {}; it can ask for {}",
                    injectable.name(),
                    available.what,
                    available.listed()
                )
            });
            errors.spanned(&typed.pat, message);
            continue;
        }
        if let Some(first) = params.iter().find(|param| param.injectable == injectable) {
            errors.spanned(
                &ident,
                format!(
                    "`{}` is asked for twice (as `{}` and `{written}`); remove one of the parameters",
                    injectable.name(),
                    first.ident
                ),
            );
            continue;
        }
        if let Type::ImplTrait(impl_trait) = &*typed.ty {
            errors.spanned(
                impl_trait,
                format!(
                    "`impl Trait` cannot be a handler parameter type: write the concrete type, e.g. `{}`",
                    injectable.example()
                ),
            );
            continue;
        }
        params.push(Param {
            injectable,
            ident,
            ty: (*typed.ty).clone(),
        });
    }
    params
}

const SELF_IN_SIGNATURE: &str =
    "handlers are free functions and cannot use `Self`: move the handler out of the `impl` block and name the type";

/// The `Self` token in a type, if any: it means the function is inside an `impl` block.
fn find_self(tokens: TokenStream) -> Option<Ident> {
    tokens.into_iter().find_map(|token| match token {
        TokenTree::Ident(ident) if ident == "Self" => Some(ident),
        TokenTree::Group(group) => find_self(group.stream()),
        _ => None,
    })
}

/// What to write instead of a pattern: the injectable whose usual type is the one written, or
/// the first one available.
fn example_for_type(ty: &Type, available: &Availability<'_>) -> &'static str {
    let written = ty.to_token_stream().to_string().replace(' ', "");
    available
        .injectables
        .iter()
        .map(|injectable| injectable.example())
        .find(|example| {
            example
                .split_once(": ")
                .is_some_and(|(_, accepted)| accepted.replace(' ', "") == written)
        })
        .or_else(|| available.injectables.first().map(|first| first.example()))
        .unwrap_or("memo: &mut Memo")
}

/// Checks the return type for what can never work whatever it names: `impl Trait`, `!`, and
/// `Self`. Anything else is checked by the compiler against `()` / `Result<(), E: Display>`.
pub(crate) fn check_return(sig: &Signature, errors: &mut Errors) -> bool {
    let ReturnType::Type(_, ty) = &sig.output else {
        return true;
    };
    let message = match &**ty {
        Type::ImplTrait(_) => "handlers cannot return `impl Trait`: return `()` or `Result<(), E>` where `E: Display`",
        Type::Never(_) => {
            "handlers return `()` or `Result<(), E>`, not `!`: a handler that never returns would block its resource"
        }
        _ => match find_self(ty.to_token_stream()) {
            Some(self_type) => {
                errors.at(self_type.span(), SELF_IN_SIGNATURE);
                return false;
            }
            None => return true,
        },
    };
    errors.spanned(ty, message);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    const RESOURCE: Availability<'static> = Availability {
        injectables: &[
            Injectable::Memo,
            Injectable::Name,
            Injectable::Namespace,
            Injectable::Logger,
        ],
        what: "an event handler",
    };

    fn analyze(sig: Signature) -> (Vec<Param>, Vec<String>) {
        let mut errors = Errors::default();
        check_function(&sig, "#[handler]", &mut errors);
        let params = params(&sig, &RESOURCE, &mut errors);
        (params, errors.messages())
    }

    #[test]
    fn names_select_injectables() {
        let (params, errors) = analyze(parse_quote!(fn f(memo: &mut Memo, _name: &str, mut namespace: Option<String>)));
        assert!(errors.is_empty(), "{errors:?}");
        let selected: Vec<_> = params.iter().map(|p| p.injectable).collect();
        assert_eq!(selected, [Injectable::Memo, Injectable::Name, Injectable::Namespace]);
        assert_eq!(params[1].ident, "_name");
    }

    #[test]
    fn unknown_name_suggests_and_lists() {
        let (_, errors) = analyze(parse_quote!(fn f(nmae: &str)));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("`nmae` is not something an event handler can receive"),
            "{errors:?}"
        );
        assert!(
            errors[0].contains("`memo`, `name`, `namespace`, `logger`"),
            "{errors:?}"
        );
        assert!(errors[0].contains("did you mean `name`?"), "{errors:?}");
        let (_, errors) = analyze(parse_quote!(fn f(banana: &str)));
        assert!(!errors[0].contains("did you mean"), "{errors:?}");
    }

    #[test]
    fn patterns_suggest_the_injectable_of_their_type() {
        let (_, errors) = analyze(parse_quote!(fn f(_: Option<&str>)));
        assert!(errors[0].contains("write e.g. `namespace: Option<&str>`"), "{errors:?}");
        let (_, errors) = analyze(parse_quote!(fn f(_: u8)));
        assert!(errors[0].contains("write e.g. `memo: &mut Memo`"), "{errors:?}");
    }

    #[test]
    fn self_means_an_impl_block() {
        let (_, errors) = analyze(parse_quote!(fn f(memo: &mut Self, name: Vec<Self>)));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("cannot use `Self`"), "{errors:?}");
        let mut errors = Errors::default();
        assert!(!check_return(&parse_quote!(fn f() -> Result<(), Self>), &mut errors));
        assert!(errors.messages()[0].contains("cannot use `Self`"));
    }

    #[test]
    fn return_types_that_can_never_work() {
        for sig in [parse_quote!(fn f() -> impl Display), parse_quote!(fn f() -> !)] {
            let mut errors = Errors::default();
            assert!(!check_return(&sig, &mut errors));
            assert!(
                errors.messages()[0].contains("return `()` or `Result<(), E>`"),
                "{:?}",
                errors.messages()
            );
        }
        let mut errors = Errors::default();
        assert!(check_return(&parse_quote!(fn f() -> String), &mut errors));
        assert!(check_return(
            &parse_quote!(fn f() -> memo_runtime::Result<()>),
            &mut errors
        ));
        assert!(errors.is_empty());
    }

    #[test]
    fn unavailable_duplicate_pattern_and_impl_trait() {
        let (_, errors) = analyze(
            parse_quote!(fn f(event: &Event, memo: &Memo, _memo: &Memo, (a, b): (u8, u8), name: impl AsRef<str>)),
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("`event` is not available in an event handler"));
        assert!(errors[1].contains("asked for twice"));
        assert!(errors[2].contains("must be plain names"));
        assert!(errors[3].contains("`impl Trait`"));
    }

    #[test]
    fn function_qualifiers_and_generics() {
        let (_, errors) = analyze(parse_quote!(const unsafe extern "C" fn f<T: Clone>(memo: &Memo) where T: Send));
        assert_eq!(errors.len(), 5, "{errors:?}");
        let (_, errors) = analyze(parse_quote!(fn f<'a>(name: &'a str)));
        assert!(errors[0].contains("lifetime parameters"), "{errors:?}");
    }

    #[test]
    fn what_changed_is_for_update_handlers_only() {
        let (_, errors) = analyze(parse_quote!(fn f(diff: &Diff, old: &Value)));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("`diff` is only given to `update` handlers: use `#[handler(update = \"…\")]`"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("`old` is only given"), "{errors:?}");
    }

    #[test]
    fn writing_is_for_handlers_of_a_resource() {
        const STARTUP: Availability<'static> = Availability {
            injectables: &[
                Injectable::Memo,
                Injectable::Logger,
                Injectable::Shared,
                Injectable::Client,
            ],
            what: "a startup handler",
        };
        let mut errors = Errors::default();
        let sig: Signature = parse_quote!(fn f(patch: &mut Patch, recorder: &Recorder, client: &Client));
        let params = params(&sig, &STARTUP, &mut errors);
        let errors = errors.messages();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("`patch` is only given to handlers of a resource"),
            "{errors:?}"
        );
        assert!(errors[1].contains("no object to post Events about"), "{errors:?}");
        assert_eq!(params.len(), 1);
        assert_eq!(params[0].injectable, Injectable::Client);
    }

    #[test]
    fn receivers_are_rejected() {
        let (_, errors) = analyze(parse_quote!(fn f(&self, memo: &Memo)));
        assert!(errors[0].contains("cannot take `self`"), "{errors:?}");
    }
}
