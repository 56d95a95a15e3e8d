//! The contract between generated handler wrappers and the runtime's values.
//!
//! A wrapper receives a [`Context`](crate::contract::context::Context) and asks it for exactly the injectables its handler's
//! signature names, through one trait per injectable. The traits are implemented only for the
//! accepted types, so a wrong type is a compile error on the user's type that says what is
//! accepted (`#[diagnostic::on_unimplemented]`).

use crate::api::event::Event;
use crate::api::logger::Logger;
use crate::api::shard::{Fence, Held};
use crate::contract::context::Env;
use crate::contract::outcome::InjectError;
use crate::contract::registry::MemoType;
use crate::shared::Shared;
use serde_json::Value;
use std::any::Any;

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
pub fn memo_type_of<'a, T: MemoArg<'a>>() -> MemoType {
    MemoType::of::<T::Memo>()
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

/// The types a `retry` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `retry` parameter",
    label = "expected `u32`",
    note = "`retry` counts this handler's retries for the event: 0 on its first call"
)]
pub trait RetryArg<'a>: Sized {
    /// Takes the count.
    fn inject(retry: u32) -> Result<Self, InjectError>;
}

impl RetryArg<'_> for u32 {
    #[inline]
    fn inject(retry: u32) -> Result<Self, InjectError> {
        Ok(retry)
    }
}

/// The types a `fence` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `fence` parameter",
    label = "expected `Option<Fence>` (`memo_runtime::shard::Fence`)",
    note = "`fence` is the lease this replica holds on the resource's bucket with `--shard auto`, `None` otherwise"
)]
pub trait FenceArg<'a>: Sized {
    /// Takes the fence.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> FenceArg<'a> for Option<Fence> {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(env.held.map(Held::fence))
    }
}
