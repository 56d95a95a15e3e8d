//! Calling one unit of a resource's work: an event's handlers in order, a timer, or a retry, and
//! what that came to (deleted, or a handler to retry).

use crate::api::event::{Event, EventType};
use crate::api::logger::Logger;
use crate::api::resource::{Resource, ResourceKey};
use crate::contract::context::Env;
use crate::contract::seen::Versions;
use crate::dispatch::choose::{Choice, choose};
use crate::exec::invoke;
use crate::exec::retry::{self, PendingRetry, Verdict};
use crate::exec::writeback::{Patches, Writeback};
use crate::observe::in_flight::Watch;
use crate::plan::bound::Bound;
use crate::plan::catalog::KindPlan;
use once_cell::race::OnceBox;
use serde_json::Value;
use std::sync::Arc;

/// What a resource keeps between events.
pub(crate) struct ResourceState<M> {
    /// The handlers of the resource's kind. Part of the state, so that it travels to a worker
    /// and back by move, without touching a reference count shared by every resource of the kind.
    pub(crate) plan: Arc<KindPlan>,
    pub(crate) memo: M,
    /// Made when a handler first asks for it; one pointer until then.
    pub(crate) logger: OnceBox<Logger>,
    /// The last object handled, kept only for kinds with timers (a timer sees the latest body)
    /// or `update` handlers (the next version is compared with it). Shared with the event, and
    /// with the source when it keeps objects too: keeping it copies nothing, and its essence is
    /// made only when a handler asks what changed.
    pub(crate) body: Option<Arc<Value>>,
    /// With several lanes: the router's number of the last event for this resource, so that
    /// the router forgets which lane has it only if no later event is on its way there.
    pub(crate) seq: u32,
}

/// One unit of work for a resource.
pub(crate) enum Work {
    Event(Event),
    Timer(u16),
    /// A failed handler's next try (and the handlers after it).
    Retry(Box<PendingRetry>),
}

impl Work {
    pub(crate) fn is_event(&self) -> bool {
        matches!(self, Work::Event(_))
    }

    pub(crate) fn is_deleted_event(&self) -> bool {
        matches!(self, Work::Event(event) if event.r#type == EventType::Deleted)
    }
}

/// Logs a retry that a deletion cancelled, naming the handler.
pub(crate) fn log_cancelled<M>(
    key: &ResourceKey,
    state: &ResourceState<M>,
    retry: &PendingRetry,
    events_dropped: usize,
) {
    if let Some(bound) = state.plan.handlers(retry.event.r#type).get(retry.handler) {
        let resource = Resource {
            kind: &state.plan.kind,
            key,
        };
        retry::log_cancelled(bound.handler, &resource, events_dropped);
    }
}

pub(crate) fn reject(event: &Event, missing: &crate::api::resource::Missing) {
    tracing::error!(
        target: "memo",
        r#type = event.r#type.as_str(),
        kind = event.kind().unwrap_or_default(),
        name = event.name().unwrap_or_default(),
        "event rejected: {missing}"
    );
}

/// What running one unit of work came to.
pub(crate) struct Ran {
    /// The resource was deleted (its `DELETED` handlers are done).
    pub(crate) deleted: bool,
    /// A handler failed and runs again later.
    pub(crate) retry: Option<Box<PendingRetry>>,
}

/// Runs one unit of work for a resource.
pub(crate) async fn run_work<M: Send + Sync + 'static>(
    key: &ResourceKey,
    state: &mut ResourceState<M>,
    work: Work,
    watch: &Watch,
    out: &Writeback,
) -> Ran {
    let ResourceState {
        plan,
        memo,
        logger,
        body,
        ..
    } = state;
    let resource = Resource { kind: &plan.kind, key };
    let (event, first, retries_done) = match work {
        Work::Event(event) => (event, 0, 0),
        Work::Retry(retry) => {
            let PendingRetry {
                event,
                handler,
                attempt,
                ..
            } = *retry;
            (event, handler, attempt)
        }
        Work::Timer(timer) => {
            let spec = &plan.timers[usize::from(timer)];
            let handler = spec.handler.handler;
            let env = Env::new(body.as_deref(), None, Some(resource), logger, watch).on(out.cluster());
            if let Choice::Run(_) = choose(&spec.handler, env.body, None, &resource) {
                let mut patch = Patches::slot(handler);
                let outcome = invoke::call(&spec.handler, memo, &env, None, patch.as_mut()).await;
                match (outcome, env.body) {
                    (Ok(()), Some(body)) if patch.is_some() => {
                        let mut patches = Patches::default();
                        patches.keep(handler, patch);
                        out.apply(patches, body, &resource, false, plan.metrics.as_ref()).await;
                    }
                    (Ok(()), _) => {}
                    (Err(err), body) => {
                        invoke::report(handler, &env, &err);
                        if let Some(body) = body {
                            out.failed(body, &resource, handler, format!("failed: {err}"));
                        }
                    }
                }
            }
            return Ran {
                deleted: false,
                retry: None,
            };
        }
    };
    // The first version seen is the base of the next change at once: a retry of its handlers,
    // even one dropped when the source ends, does not make the next version a first one.
    if body.is_none() && plan.keeps_body() && event.r#type != EventType::Deleted {
        *body = Some(Arc::clone(&event.object));
    }
    let mut patches = Patches::default();
    let failed = {
        let env = Env::new(Some(&event.object), Some(&event), Some(resource), logger, watch).on(out.cluster());
        // Until its handlers are done (a retry included), the last object handled is the one
        // before this event; for a first event, the event's own (no change: no update handler).
        let versions = match (event.r#type, body.as_deref()) {
            (EventType::Modified, Some(last)) if plan.has_updates() => Some(Versions::new(last, &event.object)),
            _ => None,
        };
        let mut failed = None;
        // Only a failure, or a success after retries, has anything to settle.
        for (index, bound) in plan.handlers(event.r#type).iter().enumerate().skip(first) {
            let Choice::Run(seen) = choose(bound, env.body, versions.as_ref(), &resource) else {
                continue;
            };
            let mut patch = Patches::slot(bound.handler);
            let outcome = invoke::call(bound, memo, &env, seen.as_ref(), patch.as_mut()).await;
            let retries_done = if index == first { retries_done } else { 0 };
            if outcome.is_ok() {
                // A failed handler's patch is dropped: its retry starts clean.
                patches.keep(bound.handler, patch);
                out.succeeded(&event.object, &resource, bound.handler);
                if retries_done == 0 {
                    continue;
                }
            }
            if let Some(delay) = settle_handler(bound, outcome, retries_done, &env, &resource, out) {
                failed = Some((index, retries_done + 1, delay));
                break;
            }
        }
        failed
    };
    // What the handlers that succeeded asked for, in one write, a retry to come or not.
    if patches.any() {
        let gone = event.r#type == EventType::Deleted;
        out.apply(patches, &event.object, &resource, gone, plan.metrics.as_ref())
            .await;
    }
    if let Some((handler, attempt, delay)) = failed {
        return Ran {
            deleted: false,
            retry: Some(Box::new(PendingRetry {
                event,
                handler,
                attempt,
                delay,
            })),
        };
    }
    if let Some(metrics) = &plan.metrics {
        metrics.handled(event.r#type);
    }
    let deleted = event.r#type == EventType::Deleted;
    if plan.keeps_body() && !deleted {
        *body = Some(event.object);
        return Ran {
            deleted: false,
            retry: None,
        };
    }
    Ran { deleted, retry: None }
}

/// Logs how a handler's call went (a success only after retries); returns the delay if it is to
/// be retried.
fn settle_handler(
    bound: &Bound,
    outcome: crate::contract::outcome::Outcome,
    retries_done: u32,
    env: &Env<'_>,
    resource: &Resource<'_>,
    out: &Writeback,
) -> Option<std::time::Duration> {
    let handler = bound.handler;
    let object = env.body.unwrap_or(&serde_json::Value::Null);
    match outcome {
        Ok(()) => {
            retry::log_recovered(handler, resource, retries_done);
            None
        }
        Err(err) if retry::retried(handler) => match retry::verdict(&handler.retry, &err, retries_done) {
            Verdict::Retry(delay) => {
                retry::log_temporary(handler, resource, &err, delay);
                out.failed(
                    object,
                    resource,
                    handler,
                    format!("failed temporarily: {err}; retrying in {delay:.1?}"),
                );
                if let Some(metrics) = &bound.metrics {
                    metrics.retry_scheduled();
                }
                Some(delay)
            }
            verdict => {
                retry::log_final(handler, resource, &err, &verdict, retries_done);
                let what = match verdict {
                    Verdict::Permanent => format!("failed permanently: {err}"),
                    _ => format!("gave up after {retries_done} retries: {err}"),
                };
                out.failed(object, resource, handler, what);
                None
            }
        },
        Err(err) => {
            invoke::report(handler, env, &err);
            out.failed(object, resource, handler, format!("failed: {err}"));
            None
        }
    }
}
