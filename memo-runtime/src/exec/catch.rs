//! A handler's panic, caught and turned into its failure, so that one handler cannot take its
//! worker down with it.

use crate::api::logger::InSpan;
use crate::api::resource::Resource;
use crate::contract::outcome::{HandlerError, Outcome};
use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// A panic's message as a handler's failure.
pub(crate) fn panicked(panic: Box<dyn Any + Send>) -> HandlerError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    HandlerError::new(format!("panicked: {message}"))
}

/// Turns a panic while polling a handler's future into its error outcome; with a resource, polled
/// inside the handler span that shows it (see [`InSpan`]).
pub(crate) struct CatchUnwind<'a, F>(pub(crate) F, pub(crate) Option<Resource<'a>>);

impl<F: Future<Output = Outcome> + Unpin> Future for CatchUnwind<'_, F> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Outcome> {
        let _in_span = self.1.map(InSpan::enter);
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(panicked(panic))),
        }
    }
}
