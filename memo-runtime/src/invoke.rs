//! Calling one handler: building its context, catching its failure, and logging it by name.

use crate::inject::{Context, Env, HandlerError, Outcome};
use crate::registry::{Invoke, Registration};
use serde_json::Value;
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// Runs `handler` and logs its failure (an `Err` or a panic) with the handler and the resource.
/// A failing handler never stops the operator.
pub(crate) async fn call(
    handler: &'static Registration,
    memo: &mut (dyn Any + Send + Sync),
    env: &Env<'_>,
) {
    let mut cx = Context { memo, env };
    let outcome = match handler.invoke {
        Invoke::Sync(wrapper) => catch_unwind(AssertUnwindSafe(|| wrapper(&mut cx)))
            .unwrap_or_else(|panic| Err(panicked(panic))),
        Invoke::Async(wrapper) => CatchUnwind(wrapper(&mut cx)).await,
    };
    if let Err(err) = outcome {
        report(handler, env.body, &err);
    }
}

fn report(handler: &'static Registration, body: Option<&Value>, err: &HandlerError) {
    match body {
        Some(body) => tracing::error!(
            target: "memo",
            handler = handler.id,
            kind = body.get("kind").and_then(serde_json::Value::as_str).unwrap_or_default(),
            namespace = crate::event::metadata_str(body, "namespace").unwrap_or_default(),
            name = crate::event::metadata_str(body, "name").unwrap_or_default(),
            "handler `{}` failed: {err}",
            handler.id,
        ),
        None => {
            tracing::error!(target: "memo", handler = handler.id, "handler `{}` failed: {err}", handler.id)
        }
    }
}

fn panicked(panic: Box<dyn Any + Send>) -> HandlerError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    HandlerError(format!("panicked: {message}"))
}

/// Turns a panic while polling the handler's future into its error outcome.
struct CatchUnwind<F>(F);

impl<F: Future<Output = Outcome> + Unpin> Future for CatchUnwind<F> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Outcome> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(panicked(panic))),
        }
    }
}
