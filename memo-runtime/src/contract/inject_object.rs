//! The injectables that read the handler's object: `spec`, `status`, `labels` and
//! `annotations`, one trait each, as in `inject`.

use crate::api::labels::{Annotations, Labels};
use crate::contract::context::Env;
use crate::contract::outcome::InjectError;
use serde_json::Value;

/// The types a `spec` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `spec` parameter",
    label = "expected `&serde_json::Value`",
    note = "`spec` is the object's `spec`, `Value::Null` when it has none"
)]
pub trait SpecArg<'a>: Sized {
    /// Takes the object's `spec`.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> SpecArg<'a> for &'a Value {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(&env.body("spec")?["spec"])
    }
}

/// The types a `status` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `status` parameter",
    label = "expected `&serde_json::Value`",
    note = "`status` is the object's `status`, `Value::Null` when it has none"
)]
pub trait StatusArg<'a>: Sized {
    /// Takes the object's `status`.
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError>;
}

impl<'a> StatusArg<'a> for &'a Value {
    #[inline]
    fn inject(env: &'a Env<'a>) -> Result<Self, InjectError> {
        Ok(&env.body("status")?["status"])
    }
}

/// The types a `labels` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a `labels` parameter",
    label = "expected `&Labels`"
)]
pub trait LabelsArg<'a>: Sized {
    /// Takes the view of the object's labels made for this call.
    fn inject(labels: Option<&'a Labels<'a>>) -> Result<Self, InjectError>;
}

impl<'a> LabelsArg<'a> for &'a Labels<'a> {
    #[inline]
    fn inject(labels: Option<&'a Labels<'a>>) -> Result<Self, InjectError> {
        labels.ok_or(InjectError("labels"))
    }
}

/// The types an `annotations` parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of an `annotations` parameter",
    label = "expected `&Annotations`"
)]
pub trait AnnotationsArg<'a>: Sized {
    /// Takes the view of the object's annotations made for this call.
    fn inject(annotations: Option<&'a Annotations<'a>>) -> Result<Self, InjectError>;
}

impl<'a> AnnotationsArg<'a> for &'a Annotations<'a> {
    #[inline]
    fn inject(annotations: Option<&'a Annotations<'a>>) -> Result<Self, InjectError> {
        annotations.ok_or(InjectError("annotations"))
    }
}
