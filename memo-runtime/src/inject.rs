//! The contract between generated handler wrappers and the runtime.
//!
//! A wrapper receives a [`Context`] and asks it for exactly the injectables its handler's
//! signature names, through one trait per injectable. The traits are implemented only for the
//! accepted types, so a wrong type is a compile error on the user's type that says what is
//! accepted (`#[diagnostic::on_unimplemented]`).

use crate::in_flight::Watch;
use crate::resource::Resource;
use crate::{Event, Logger, Shared};
use serde_json::Value;
use std::any::Any;
use std::fmt::{self, Display};

/// What a handler call came to: `Ok` or the handler's error, already rendered.
pub type Outcome = Result<(), HandlerError>;

/// A handler's error message (or why its arguments could not be supplied), and whether retrying
/// may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    pub(crate) message: String,
    pub(crate) retry: RetryHint,
}

/// What a failure says about retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryHint {
    /// Any error, a panic, a timeout: retry with the handler's backoff.
    Backoff,
    /// [`Error::temporary`](crate::Error::temporary): retry after exactly this delay.
    After(std::time::Duration),
    /// [`Error::permanent`](crate::Error::permanent): never retry.
    Never,
}

impl HandlerError {
    /// A failure to retry with the handler's backoff.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retry: RetryHint::Backoff,
        }
    }

    /// The failure `err` is, classified: memo's own temporary and permanent errors (also boxed as
    /// `dyn Error`) say how to retry; anything else is retried with the backoff.
    fn of<E: Display + 'static>(err: E) -> Self {
        let any: &dyn Any = &err;
        let ours = any
            .downcast_ref::<crate::Error>()
            .or_else(|| {
                any.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>()
                    .and_then(|boxed| boxed.downcast_ref::<crate::Error>())
            })
            .or_else(|| {
                any.downcast_ref::<Box<dyn std::error::Error>>()
                    .and_then(|boxed| boxed.downcast_ref::<crate::Error>())
            });
        HandlerError {
            retry: ours.map_or(RetryHint::Backoff, crate::Error::retry_hint),
            message: err.to_string(),
        }
    }
}

impl Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why an injectable could not be supplied. The macro checks availability per handler kind, so
/// this only happens if the runtime and the macro disagree; it is reported, never a panic.
#[derive(Debug, Clone, Copy)]
pub struct InjectError(&'static str);

impl From<InjectError> for HandlerError {
    fn from(err: InjectError) -> Self {
        HandlerError::new(format!("the runtime could not supply `{}` to this handler", err.0))
    }
}

/// Everything a wrapper may take its handler's arguments from.
pub struct Context<'a> {
    /// The memo: the resource's, or the operator's for startup and cleanup handlers.
    pub memo: &'a mut (dyn Any + Send + Sync),
    /// Everything else, shared.
    pub env: &'a Env<'a>,
    /// The handler's shared memory, if it asks for one.
    pub shared: Option<&'a Shared>,
}

/// The read-only part of a [`Context`].
pub struct Env<'a> {
    pub(crate) body: Option<&'a Value>,
    pub(crate) event: Option<&'a Event>,
    /// Who the resource is, read once when its first event was admitted.
    pub(crate) resource: Option<Resource<'a>>,
    pub(crate) logger: &'a once_cell::race::OnceBox<Logger>,
    /// Where the running handler is marked, for a stop that has to abandon it.
    pub(crate) watch: &'a Watch,
}

impl<'a> Env<'a> {
    fn body(&self, what: &'static str) -> Result<&'a Value, InjectError> {
        self.body.ok_or(InjectError(what))
    }

    fn resource(&self, what: &'static str) -> Result<Resource<'a>, InjectError> {
        self.resource.ok_or(InjectError(what))
    }
}

/// Turns a handler's return value into an [`Outcome`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported handler return type",
    label = "handlers return `()` or `Result<(), E>` where `E: Display`",
    note = "return nothing, `memo_runtime::Result<()>`, or `Result<(), E>` with an error type that implements `Display`"
)]
pub trait IntoOutcome {
    /// Converts.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for () {
    #[inline]
    fn into_outcome(self) -> Outcome {
        Ok(())
    }
}

impl<E: Display + 'static> IntoOutcome for Result<(), E> {
    #[inline]
    fn into_outcome(self) -> Outcome {
        self.map_err(HandlerError::of)
    }
}

/// The types a `memo` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `memo` parameter",
    label = "expected `&Memo`, `&mut Memo`, or `&M` / `&mut M` for a custom memo type",
    note = "a custom memo type `M` must be `Clone + Send + Sync + 'static`; its `Clone` is the shallow copy each resource gets"
)]
pub trait MemoArg<'a>: Sized {
    /// The memo type asked for.
    type Memo: Clone + Send + Sync + 'static;
    /// Takes the memo from the context.
    fn inject(memo: &'a mut (dyn Any + Send + Sync)) -> Result<Self, InjectError>;
}

impl<'a, M: Clone + Send + Sync + 'static> MemoArg<'a> for &'a M {
    type Memo = M;
    #[inline]
    fn inject(memo: &'a mut (dyn Any + Send + Sync)) -> Result<Self, InjectError> {
        (*memo).downcast_ref::<M>().ok_or(InjectError("memo"))
    }
}

impl<'a, M: Clone + Send + Sync + 'static> MemoArg<'a> for &'a mut M {
    type Memo = M;
    #[inline]
    fn inject(memo: &'a mut (dyn Any + Send + Sync)) -> Result<Self, InjectError> {
        memo.downcast_mut::<M>().ok_or(InjectError("memo"))
    }
}

/// The memo type a `memo` parameter of type `T` asks for.
pub fn memo_type_of<'a, T: MemoArg<'a>>() -> crate::registry::MemoType {
    crate::registry::MemoType::of::<T::Memo>()
}

/// The types a `name` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `name` parameter",
    label = "expected `&str` or `String`"
)]
pub trait NameArg<'a>: Sized {
    /// Takes the resource's `metadata.name`.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> NameArg<'a> for &'a str {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(env.resource("name")?.name())
    }
}

impl<'a> NameArg<'a> for String {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        <&str as NameArg>::inject(env).map(str::to_owned)
    }
}

/// The types a `uid` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `uid` parameter",
    label = "expected `&str` or `String`"
)]
pub trait UidArg<'a>: Sized {
    /// Takes the resource's `metadata.uid` (empty if the object has none).
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> UidArg<'a> for &'a str {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(env.resource("uid")?.uid())
    }
}

impl<'a> UidArg<'a> for String {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        <&str as UidArg>::inject(env).map(str::to_owned)
    }
}

/// The types a `namespace` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `namespace` parameter",
    label = "expected `Option<&str>` or `Option<String>`",
    note = "cluster-scoped resources have no namespace, so it is an `Option`"
)]
pub trait NamespaceArg<'a>: Sized {
    /// Takes the resource's `metadata.namespace`.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> NamespaceArg<'a> for Option<&'a str> {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(env.resource("namespace")?.namespace())
    }
}

impl<'a> NamespaceArg<'a> for Option<String> {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(env.resource("namespace")?.namespace().map(str::to_owned))
    }
}

/// The types a `body` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `body` parameter",
    label = "expected `&serde_json::Value`"
)]
pub trait BodyArg<'a>: Sized {
    /// Takes the resource object.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> BodyArg<'a> for &'a Value {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        env.body("body")
    }
}

/// The types an `event` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of an `event` parameter",
    label = "expected `&Event`"
)]
pub trait EventArg<'a>: Sized {
    /// Takes the event being handled.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> EventArg<'a> for &'a Event {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        env.event.ok_or(InjectError("event"))
    }
}

/// The types a `logger` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `logger` parameter",
    label = "expected `&Logger`"
)]
pub trait LoggerArg<'a>: Sized {
    /// Takes the resource's (or the operator's) logger, made on first use.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> LoggerArg<'a> for &'a Logger {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(env.logger.get_or_init(|| {
            Box::new(match env.resource {
                Some(resource) => Logger::resource(resource.kind, resource.namespace(), resource.name()),
                None => Logger::operator(),
            })
        }))
    }
}

/// The types a `shared` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `shared` parameter",
    label = "expected `&Shared`"
)]
pub trait SharedArg<'a>: Sized {
    /// Takes the handler's shared memory (already prepared).
    fn inject(shared: Option<&'a Shared>) -> Result<Self, InjectError>;
}

impl<'a> SharedArg<'a> for &'a Shared {
    #[inline]
    fn inject(shared: Option<&'a Shared>) -> Result<Self, InjectError> {
        shared.ok_or(InjectError("shared"))
    }
}
