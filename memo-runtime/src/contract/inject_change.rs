//! The injectables of `update` handlers: `old`, `new` and `diff`, one trait each, as in
//! `inject`. Each is made when the first handler asks for it.

use crate::api::diff::Diff;
use crate::contract::outcome::InjectError;
use crate::contract::seen::Seen;
use serde_json::Value;

/// The types an `old` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of an `old` parameter",
    label = "expected `&serde_json::Value`",
    note = "`old` is the object's essence as last handled, or its `field`'s value there (`Value::Null` when absent)"
)]
pub trait OldArg<'a>: Sized {
    /// Takes the version before the change.
    fn inject(seen: Option<&'a Seen<'a>>) -> Result<Self, InjectError>;
}

impl<'a> OldArg<'a> for &'a Value {
    #[inline]
    fn inject(seen: Option<&'a Seen<'a>>) -> Result<Self, InjectError> {
        Ok(seen.ok_or(InjectError("old"))?.before())
    }
}

/// The types a `new` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `new` parameter",
    label = "expected `&serde_json::Value`",
    note = "`new` is the object's essence now, or its `field`'s value (`Value::Null` when absent)"
)]
pub trait NewArg<'a>: Sized {
    /// Takes the version after the change.
    fn inject(seen: Option<&'a Seen<'a>>) -> Result<Self, InjectError>;
}

impl<'a> NewArg<'a> for &'a Value {
    #[inline]
    fn inject(seen: Option<&'a Seen<'a>>) -> Result<Self, InjectError> {
        Ok(seen.ok_or(InjectError("new"))?.after())
    }
}

/// The types a `diff` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `diff` parameter",
    label = "expected `&Diff`"
)]
pub trait DiffArg<'a>: Sized {
    /// Takes what changed between `old` and `new`.
    fn inject(seen: Option<&'a Seen<'a>>) -> Result<Self, InjectError>;
}

impl<'a> DiffArg<'a> for &'a Diff {
    #[inline]
    fn inject(seen: Option<&'a Seen<'a>>) -> Result<Self, InjectError> {
        Ok(seen.ok_or(InjectError("diff"))?.diff())
    }
}
