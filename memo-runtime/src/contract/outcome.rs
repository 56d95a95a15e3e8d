//! What a handler call comes to, as its generated wrapper returns it: `Ok`, or its error rendered
//! and classified for retrying.

use crate::api::error::{Error, RetryHint};
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
            .downcast_ref::<Error>()
            .or_else(|| {
                any.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>()
                    .and_then(|boxed| boxed.downcast_ref::<Error>())
            })
            .or_else(|| {
                any.downcast_ref::<Box<dyn std::error::Error>>()
                    .and_then(|boxed| boxed.downcast_ref::<Error>())
            });
        HandlerError {
            retry: ours.map_or(RetryHint::Backoff, Error::retry_hint),
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
pub struct InjectError(pub(crate) &'static str);

impl From<InjectError> for HandlerError {
    fn from(err: InjectError) -> Self {
        HandlerError::new(format!("the runtime could not supply `{}` to this handler", err.0))
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
