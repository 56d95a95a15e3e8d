//! The runtime's error type.

use crate::api::problem::Problem;
use crate::api::signal::Signal;
use std::fmt;

/// What a failure says about retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryHint {
    /// Any error, a panic, a timeout: retry with the handler's backoff.
    Backoff,
    /// [`Error::temporary`]: retry after exactly this delay.
    After(std::time::Duration),
    /// [`Error::permanent`]: never retry.
    Never,
}

/// A `Result` whose error defaults to [`Error`].
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime, and a convenient error type for handlers.
///
/// Handlers may return `memo_runtime::Result<()>` and use `?` on I/O and JSON errors, or build
/// their own message with [`Error::custom`].
///
/// ```
/// fn check(replicas: i64) -> memo_runtime::Result<()> {
///     if replicas < 0 {
///         return Err(memo_runtime::Error::custom(format!("replicas must be >= 0, got {replicas}")));
///     }
///     Ok(())
/// }
/// assert!(check(-1).unwrap_err().to_string().contains("replicas"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The handler registry failed validation at `Operator::run`; nothing was handled.
    /// Each entry is one problem, naming the handler(s) and their source locations.
    Startup(Vec<Problem>),
    /// The receiving side of a channel is gone (the operator stopped).
    Closed,
    /// Reading a source failed.
    Io(std::io::Error),
    /// A value could not be (de)serialized.
    Json(serde_json::Error),
    /// A shared-memory value could not be read or written as the requested type.
    SharedType {
        /// The key.
        key: String,
        /// The Rust type asked for.
        type_name: &'static str,
        /// What serde said.
        reason: String,
    },
    /// A startup handler failed (an error or a panic, logged with it): the operator handled no
    /// event.
    StartupFailed {
        /// The handler's id.
        handler: String,
        /// Its source location, `file:line:column`.
        location: String,
    },
    /// A second signal arrived during a graceful stop and cut it short. A shell reports a process
    /// killed by the signal with [`Signal::exit_code`] (130, 143); so
    /// does [`run`](crate::run).
    Forced(Signal),
    /// The shared-memory store failed or could not be reached (for Redis: the URL, what was
    /// being done, and why). The same call can succeed once the store is back.
    Store(String),
    /// A write to the shared-memory store whose outcome could not be learnt: the store was
    /// unreachable when the call's time was up, after the write may have reached it. The write
    /// may or may not have been applied (see [`Error::is_outcome_unknown`]). Every other error of
    /// a write means that nothing was written.
    OutcomeUnknown(String),
    /// A fenced write was refused, and nothing was written: the lock's lease is no longer held by
    /// the guard that was given (it ran out while the holder was paused, or the memory was
    /// cleared), so another holder may have the lock now.
    LeaseLost {
        /// The lock's name.
        lock: String,
        /// The key that was not written.
        key: String,
    },
    /// Handlers select kinds the Kubernetes API server does not serve: nothing was watched and no
    /// event handled. Each entry names the kind, the handler and its source location.
    UnknownKinds(Vec<UnknownKind>),
    /// The Kubernetes API could not be reached or configured (no kubeconfig, discovery failed).
    Kubernetes(String),
    /// A handler's failure worth retrying after `delay` (kopf's `TemporaryError`): made with
    /// [`Error::temporary`].
    Temporary {
        /// What went wrong.
        message: String,
        /// How long to wait before the retry.
        delay: std::time::Duration,
    },
    /// A handler's failure that retrying cannot fix (kopf's `PermanentError`): made with
    /// [`Error::permanent`].
    Permanent(String),
    /// A free-form error, usually raised by a handler.
    Custom(String),
}

/// A kind that a handler selects and the cluster does not serve; see [`Error::UnknownKinds`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKind {
    /// The selector as the handler wrote it (`"kopfexampels"`).
    pub kind: String,
    /// The handler's id.
    pub handler: String,
    /// The handler's source location, `file:line:column`.
    pub location: String,
    /// A served resource with a similar name, if there is one.
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "handler `{}` at {} selects `{}`, which the cluster does not serve",
            self.handler, self.location, self.kind
        )?;
        match &self.suggestion {
            Some(suggestion) => write!(f, "; did you mean `{suggestion}`?"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// An error with the given message. Returned by a create, update or delete handler, it is
    /// retried with the handler's backoff.
    pub fn custom(message: impl fmt::Display) -> Self {
        Error::Custom(message.to_string())
    }

    /// A failure to retry after `delay` (kopf's `TemporaryError(delay=...)`): a create, update or
    /// delete handler that returns it runs again after exactly `delay` (counted as one of its
    /// `retries`).
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    /// use std::time::Duration;
    ///
    /// #[handler(create = "KopfExample", retries = 5)]
    /// async fn provision(name: &str) -> memo_runtime::Result<()> {
    ///     if name.is_empty() {
    ///         return Err(Error::temporary("the database is restarting", Duration::from_secs(10)));
    ///     }
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub fn temporary(message: impl fmt::Display, delay: std::time::Duration) -> Self {
        Error::Temporary {
            message: message.to_string(),
            delay,
        }
    }

    /// A failure never to retry (kopf's `PermanentError`): the handler is not run again for this
    /// event; the handlers after it are.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// #[handler(create = "KopfExample")]
    /// fn validate(body: &serde_json::Value) -> memo_runtime::Result<()> {
    ///     if body["spec"]["size"].as_i64().unwrap_or(0) <= 0 {
    ///         return Err(Error::permanent("spec.size must be positive"));
    ///     }
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub fn permanent(message: impl fmt::Display) -> Self {
        Error::Permanent(message.to_string())
    }

    pub(crate) fn retry_hint(&self) -> RetryHint {
        match self {
            Error::Temporary { delay, .. } => RetryHint::After(*delay),
            Error::Permanent(_) => RetryHint::Never,
            _ => RetryHint::Backoff,
        }
    }
}

impl Error {
    /// Whether this is a write whose outcome is unknown ([`Error::OutcomeUnknown`]): the store
    /// may have applied it. Every other error returned by a write (`Shared::set`, `update`,
    /// `set_fenced`, `update_fenced`) means that nothing was written, so the write can simply be
    /// made again; after this one, read the value to find out, or make the write idempotent.
    ///
    /// ```
    /// use memo_runtime::Error;
    /// assert!(!Error::Store("connection refused".into()).is_outcome_unknown());
    /// assert!(Error::OutcomeUnknown("no answer".into()).is_outcome_unknown());
    /// ```
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown(_))
    }

    /// The exit code a process should end with after this error: 130 or 143 for a stop forced
    /// by SIGINT or SIGTERM (as a shell reports them), 1 otherwise.
    ///
    /// ```
    /// use memo_runtime::{Error, Signal};
    /// assert_eq!(Error::Forced(Signal::Terminate).exit_code(), 143);
    /// assert_eq!(Error::custom("boom").exit_code(), 1);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Forced(signal) => signal.exit_code(),
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Startup(problems) => {
                write!(
                    f,
                    "the operator did not start: {} problem(s) with its handlers",
                    problems.len()
                )?;
                for problem in problems {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
            Error::Closed => f.write_str("the operator is no longer receiving events"),
            Error::Io(err) => write!(f, "i/o error: {err}"),
            Error::Json(err) => write!(f, "json error: {err}"),
            Error::SharedType { key, type_name, reason } => {
                write!(
                    f,
                    "shared memory key `{key}` cannot be used as a `{type_name}`: {reason}"
                )
            }
            Error::StartupFailed { handler, location } => {
                write!(f, "startup handler `{handler}` at {location} failed")
            }
            Error::Forced(signal) => write!(f, "stopped at once by a second {signal}"),
            Error::Store(message) => write!(f, "shared memory store: {message}"),
            Error::OutcomeUnknown(message) => write!(
                f,
                "shared memory store: {message}; the write may or may not have been applied"
            ),
            Error::LeaseLost { lock, key } => write!(
                f,
                "fenced write of shared memory key `{key}` refused: the lease of lock `{lock}` was lost; nothing was written"
            ),
            Error::UnknownKinds(unknown) => {
                write!(f, "the operator did not start: {} unknown kind(s)", unknown.len())?;
                for kind in unknown {
                    write!(f, "\n  {kind}")?;
                }
                Ok(())
            }
            Error::Kubernetes(message) => write!(f, "kubernetes: {message}"),
            Error::Temporary { message, .. } | Error::Permanent(message) | Error::Custom(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::Json(err) => Some(err),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Json(err)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn errors_cross_threads_and_box_into_dyn_error() {
        fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<Error>();
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::custom("boom"));
        assert_eq!(boxed.to_string(), "boom");
    }
}
