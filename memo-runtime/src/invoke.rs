//! Calling one handler: building its context, preparing its shared memory, catching its failure,
//! and logging it by name.

use crate::escaped::Escaped;
use crate::inject::{Context, Env, HandlerError, Outcome};
use crate::logger::InSpan;
use crate::metrics::{HandlerMetrics, Metrics};
use crate::registry::{Invoke, Preparer, Registration};
use crate::resource::Resource;
use crate::shared::SharedMemory;
use crate::{Logger, Shared};
use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tracing::Instrument;

/// A handler with the shared memory it asks for, and its counters, resolved once, when its
/// kind's plan is made.
pub(crate) struct Bound {
    pub(crate) handler: &'static Registration,
    shared: Option<Shared>,
    /// `None` unless the operator serves metrics.
    pub(crate) metrics: Option<HandlerMetrics>,
}

impl Bound {
    pub(crate) fn new(handler: &'static Registration, memory: &SharedMemory, metrics: Option<&Metrics>) -> Self {
        Bound {
            handler,
            shared: handler.uses_shared.then(|| memory.space(handler.component)),
            metrics: metrics.map(|metrics| metrics.handler(handler.id)),
        }
    }
}

/// Runs a handler, catching its failure: an `Err`, a panic, or (for an async handler with a
/// `timeout`) running too long, when it is cancelled. A handler whose shared memory cannot be
/// prepared is not run, and that is a failure too. The caller logs failures: how depends on
/// whether the handler is retried.
///
/// The handler runs inside a `handler` span carrying its id and its resource's kind, namespace
/// and name, so that a plain `tracing::info!` in its body says what it is about.
pub(crate) async fn call(bound: &Bound, memo: &mut (dyn Any + Send + Sync), env: &Env<'_>) -> Outcome {
    let started = bound.metrics.as_ref().map(HandlerMetrics::start);
    let outcome = call_in_span(bound, memo, env).await;
    if let (Some(metrics), Some(started)) = (&bound.metrics, started) {
        metrics.called(started, outcome.is_err());
    }
    outcome
}

async fn call_in_span(bound: &Bound, memo: &mut (dyn Any + Send + Sync), env: &Env<'_>) -> Outcome {
    let handler = bound.handler;
    let _running = env.watch.enter(handler, env.resource.map(|resource| resource.key));
    if let Some(shared) = &bound.shared
        && let Err(err) = crate::prepare::ensure_prepared(shared).await
    {
        let component = shared
            .component()
            .map_or_else(|| "the bot".to_owned(), |c| format!("component `{c}`"));
        return Err(HandlerError::new(format!(
            "not run: the shared memory of {component} is not prepared: {err}"
        )));
    }
    let mut cx = Context {
        memo,
        env,
        shared: bound.shared.as_ref(),
    };
    // Without a subscriber that wants it, this is a disabled span: no fields read, nothing kept.
    // Fields are recorded with `Display`: formatters write a `str`'s `Debug` escaped, char by
    // char, at several times the cost. The resource's identity is input, and formatters print a
    // `Display` raw: `Escaped` keeps a newline or an escape sequence in it out of text logs.
    let span = match env.resource {
        Some(resource) => tracing::info_span!(
            target: "memo",
            "handler",
            handler = %handler.id,
            kind = %Escaped(resource.kind),
            namespace = resource.namespace().map(|namespace| tracing::field::display(Escaped(namespace))),
            name = %Escaped(resource.name()),
        ),
        None => tracing::info_span!(target: "memo", "handler", handler = %handler.id),
    };
    // The span shows the resource, unless no subscriber wants it: `Logger` asks.
    let shown = env.resource.filter(|_| !span.is_disabled());
    match handler.invoke {
        Invoke::Sync(wrapper) => span.in_scope(|| {
            let _in_span = shown.map(InSpan::enter);
            catch_unwind(AssertUnwindSafe(|| wrapper(&mut cx))).unwrap_or_else(|panic| Err(panicked(panic)))
        }),
        Invoke::Async(wrapper) => match handler.retry.timeout {
            None => CatchUnwind(wrapper(&mut cx), shown).instrument(span).await,
            Some(timeout) => tokio::time::timeout(timeout, CatchUnwind(wrapper(&mut cx), shown).instrument(span))
                .await
                .unwrap_or_else(|_| {
                    Err(HandlerError::new(format!(
                        "timed out after {timeout:?} and was cancelled"
                    )))
                }),
        },
    }
}

/// Runs one preparer on its memory.
pub(crate) async fn call_preparer(preparer: &'static Preparer, shared: &Shared) -> Outcome {
    let logger = once_cell::race::OnceBox::with_value(Box::new(Logger::operator()));
    let watch = crate::in_flight::Watch::default();
    let env = Env {
        body: None,
        event: None,
        resource: None,
        logger: &logger,
        watch: &watch,
    };
    let mut no_memo = ();
    let mut cx = Context {
        memo: &mut no_memo,
        env: &env,
        shared: Some(shared),
    };
    CatchUnwind((preparer.invoke)(&mut cx), None).await
}

/// Logs a failure that is not retried (an event handler, a timer, startup, cleanup).
pub(crate) fn report(handler: &'static Registration, env: &Env<'_>, err: &HandlerError) {
    match env.resource {
        Some(resource) => tracing::error!(
            target: "memo",
            handler = handler.id,
            kind = resource.kind,
            namespace = resource.namespace().unwrap_or_default(),
            name = resource.name(),
            "handler `{}` failed: {err}",
            handler.id,
        ),
        None => tracing::error!(
            target: "memo",
            handler = handler.id,
            "handler `{}` at {} failed: {err}",
            handler.id,
            handler.location(),
        ),
    }
}

fn panicked(panic: Box<dyn Any + Send>) -> HandlerError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    HandlerError::new(format!("panicked: {message}"))
}

/// Turns a panic while polling a handler's future into its error outcome; with a resource, polled
/// inside the handler span that shows it (see [`InSpan`]).
struct CatchUnwind<'a, F>(F, Option<Resource<'a>>);

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
