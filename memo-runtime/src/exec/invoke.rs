//! Calling one handler: building its context, preparing its shared memory, catching its failure,
//! and logging it by name.

use crate::api::labels::{Annotations, Labels};
use crate::api::logger::InSpan;
use crate::api::patch::Patch;
use crate::api::recorder::Recorder;
use crate::contract::context::{Context, Env};
use crate::contract::outcome::{HandlerError, Outcome};
use crate::contract::registry::{Invoke, Registration};
use crate::contract::seen::Seen;
use crate::exec::catch::{CatchUnwind, panicked};
use crate::exec::prepare::ensure_prepared;
use crate::observe::escaped::Escaped;
use crate::observe::metrics::HandlerMetrics;
use crate::plan::bound::Bound;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use tracing::Instrument;

/// Runs a handler, catching its failure: an `Err`, a panic, or (for an async handler with a
/// `timeout`) running too long, when it is cancelled. A handler whose shared memory cannot be
/// prepared is not run, and that is a failure too. The caller logs failures: how depends on
/// whether the handler is retried.
///
/// The handler runs inside a `handler` span carrying its id and its resource's kind, namespace
/// and name, so that a plain `tracing::info!` in its body says what it is about.
///
/// `seen` is what an `update` handler sees changed; `patch` the handler's own patch, if it asks
/// for one.
///
/// With `--shard auto`, the lease on the resource's bucket is checked again just before the
/// handler starts, after whatever the call waited on: a lease lost meanwhile (its deadline passed,
/// or another replica holds it now) starts nothing, and the call comes to [`Moved`].
pub(crate) async fn call(
    bound: &Bound,
    memo: &mut (dyn Any + Send + Sync),
    env: &Env<'_>,
    seen: Option<&Seen<'_>>,
    patch: Option<&mut Patch>,
    retry: u32,
) -> Result<Outcome, Moved> {
    let started = bound.metrics.as_ref().map(HandlerMetrics::start);
    let outcome = call_in_span(bound, memo, env, seen, patch, retry).await?;
    if let (Some(metrics), Some(started)) = (&bound.metrics, started) {
        metrics.called(started, outcome.is_err());
    }
    Ok(outcome)
}

/// A handler not started: its resource's bucket is no longer this replica's. Nothing of it is to
/// be written or retried here; the bucket's new owner handles the resource.
#[derive(Debug)]
pub(crate) struct Moved;

async fn call_in_span(
    bound: &Bound,
    memo: &mut (dyn Any + Send + Sync),
    env: &Env<'_>,
    seen: Option<&Seen<'_>>,
    patch: Option<&mut Patch>,
    retry: u32,
) -> Result<Outcome, Moved> {
    let handler = bound.handler;
    let _running = env.watch.enter(handler, env.resource.map(|resource| resource.key));
    if let Some(shared) = &bound.shared
        && let Err(err) = ensure_prepared(shared).await
    {
        let component = shared
            .component()
            .map_or_else(|| "the bot".to_owned(), |c| format!("component `{c}`"));
        return Ok(Err(HandlerError::new(format!(
            "not run: the shared memory of {component} is not prepared: {err}"
        ))));
    }
    // The last check before the handler's own code: preparing may have waited on the store.
    if env.held.is_some_and(|held| !held.still_held()) {
        tracing::debug!(target: "memo", handler = handler.id, "not started: the lease on the resource's bucket was lost meanwhile");
        return Err(Moved);
    }
    // Made here, for this call only: see `Context::labels`.
    let labels = env.body.filter(|_| handler.uses_labels).map(Labels::of);
    let annotations = env.body.filter(|_| handler.uses_annotations).map(Annotations::of);
    let recorder =
        env.body
            .filter(|_| handler.uses_recorder)
            .map(|body| match env.cluster.and_then(|cluster| cluster.events()) {
                Some(sink) => Recorder::posting(body, sink),
                None => Recorder::logging(body),
            });
    let mut cx = Context {
        memo,
        env,
        shared: bound.shared.as_ref(),
        seen,
        labels: labels.as_ref(),
        annotations: annotations.as_ref(),
        patch,
        recorder: recorder.as_ref(),
        retry,
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
    Ok(match handler.invoke {
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
    })
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
