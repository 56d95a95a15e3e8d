//! Calling one unit of a resource's work: an event's handlers in order, a timer, or a retry, and
//! what that came to (deleted, or a handler to retry).

use crate::api::essence::essence;
use crate::api::event::{Event, EventType};
use crate::api::logger::Logger;
use crate::api::patch::Patch;
use crate::api::resource::{Resource, ResourceKey};
use crate::api::shard::Held;
use crate::contract::context::Env;
use crate::contract::seen::Versions;
use crate::dispatch::choose::{Choice, choose};
use crate::exec::invoke;
use crate::exec::progress::{
    Cause, Pending, Progress, Recorded, Waiting, add_finalizer, being_deleted, handled, has_finalizer, now_millis,
    remove_finalizer, unfinished,
};
use crate::exec::retry::{self, PendingRetry, Verdict};
use crate::exec::writeback::{Patches, Writeback, about};
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
    /// No event of it has been handled in this process yet: its first one reads its record.
    pub(crate) fresh: bool,
    /// Its delete handlers ran when its deletion started (it held the operator's finalizer).
    pub(crate) finalized: bool,
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
    held: Option<Held<'_>>,
) -> Ran {
    let ResourceState {
        plan,
        memo,
        logger,
        body,
        fresh,
        finalized,
        ..
    } = state;
    let resource = Resource { kind: &plan.kind, key };
    let (event, first, retries_done, resumed) = match work {
        Work::Event(event) => (event, 0, 0, None),
        Work::Retry(retry) => {
            let PendingRetry {
                event,
                handler,
                attempt,
                cause,
                resuming,
                base,
                ..
            } = *retry;
            (event, handler, attempt, Some((cause, resuming, base)))
        }
        Work::Timer(timer) => {
            let spec = &plan.timers[usize::from(timer)];
            let handler = spec.handler.handler;
            let env = Env::new(body.as_deref(), None, Some(resource), logger, watch)
                .on(out.cluster())
                .fenced(held);
            if let Choice::Run(_) = choose(&spec.handler, env.body, None, &resource) {
                let mut patch = Patches::slot(handler);
                let Ok(outcome) = invoke::call(&spec.handler, memo, &env, None, patch.as_mut(), 0).await else {
                    return Ran {
                        deleted: false,
                        retry: None,
                    };
                };
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
    let progress = out.progress().filter(|_| plan.tracks_progress());
    let deleted = event.r#type == EventType::Deleted;
    // What the object's record says, read once per process: on its first event here.
    let recorded = match (progress, resumed.is_none() && *fresh && !deleted) {
        // Boxed, as the record's write below: a stream without a progress store carries neither
        // future in every event's state.
        (Some(progress), true) => Box::pin(read_record(progress, &event.object, &resource)).await,
        _ => None,
    };
    *fresh = false;
    let excluded: &str = out.own_annotations();
    let (cause, resuming, base) = match resumed {
        Some((cause, resuming, base)) => (cause, resuming, base),
        None => cause_of(
            &event,
            progress.is_some() && plan.finalizes(),
            progress,
            recorded.as_deref(),
        ),
    };
    // The first version seen is the base of the next change at once: a retry of its handlers,
    // even one dropped when the source ends, does not make the next version a first one.
    if body.is_none() && plan.keeps_body() && !deleted {
        *body = Some(Arc::clone(&event.object));
    }
    // Until its handlers are done (a retry included), the last object handled is the one before
    // this event; for a first event, the event's own (no change: no update handler).
    let versions = match (cause, base.as_deref(), body.as_deref()) {
        (Cause::Update, Some(recorded), _) => Some(Versions::from_essence(recorded, &event.object, excluded)),
        (Cause::Update, None, Some(last)) if plan.has_updates() => {
            Some(Versions::excluding(last, &event.object, excluded))
        }
        _ => None,
    };
    // A change that no update handler sees (status, the operator's own annotations) is nothing
    // to handle, nor to record.
    let cause = match (cause, &versions) {
        (Cause::Update, Some(versions)) if !versions.changed() => Cause::Quiet,
        (Cause::Update, None) => Cause::Quiet,
        (cause, _) => cause,
    };
    let list = plan.handlers(cause.list(event.r#type));
    // An event left unfinished before a restart goes on where it stopped.
    let pending = recorded.as_ref().and_then(|recorded| recorded.pending.as_ref());
    if let Some(waiting) = pending.and_then(|pending| pending.waiting.as_ref())
        && let Some(index) = list.iter().position(|bound| bound.handler.id == waiting.handler)
    {
        about_resumed(&resource, &waiting.handler, waiting.retry);
        return Ran {
            deleted: false,
            retry: Some(Box::new(PendingRetry {
                event,
                handler: index,
                attempt: waiting.retry,
                delay: waiting.delay(),
                cause,
                resuming,
                base,
            })),
        };
    }
    let done: &[String] = pending.map_or(&[], |pending| &pending.done);
    let mut patches = Patches::default();
    let failed = {
        let env = Env::new(Some(&event.object), Some(&event), Some(resource), logger, watch)
            .on(out.cluster())
            .fenced(held);
        let mut failed = None;
        // Only a failure, or a success after retries, has anything to settle.
        for (index, bound) in list.iter().enumerate().skip(first) {
            if !cause.runs(bound.handler, resuming, *finalized)
                || (!done.is_empty() && done.iter().any(|id| id == bound.handler.id))
            {
                continue;
            }
            let Choice::Run(seen) = choose(bound, env.body, versions.as_ref(), &resource) else {
                continue;
            };
            let retries_done = if index == first { retries_done } else { 0 };
            let mut patch = Patches::slot(bound.handler);
            let Ok(outcome) = invoke::call(bound, memo, &env, seen.as_ref(), patch.as_mut(), retries_done).await else {
                // The bucket is another replica's now: it handles the event (from the object's
                // recorded progress, with a progress store); nothing of it is written here.
                return Ran {
                    deleted: false,
                    retry: None,
                };
            };
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
    if let Some(progress) = progress {
        let finalizes = plan.finalizes();
        let waiting = failed.map(|(index, attempt, delay): (usize, u32, std::time::Duration)| {
            let done = list[..index]
                .iter()
                .filter(|bound| cause.runs(bound.handler, resuming, *finalized))
                .map(|bound| bound.handler.id.to_owned())
                .collect();
            Pending {
                cause,
                done,
                waiting: Some(Waiting {
                    handler: list[index].handler.id.to_owned(),
                    retry: attempt,
                    at: now_millis().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
                }),
                resuming,
            }
        });
        let record = Recording {
            cause,
            finalizes,
            pending: waiting.as_ref(),
            had_pending: pending.is_some(),
            previous: base
                .as_deref()
                .or(recorded.as_ref().and_then(|recorded| recorded.essence.as_ref())),
        };
        if Box::pin(record.write(progress, &event.object, &resource, excluded, &mut patches)).await
            && cause == Cause::Finalize
        {
            *finalized = failed.is_none();
        }
    }
    // What the handlers that succeeded asked for, in one write, a retry to come or not.
    if patches.any() {
        out.apply(patches, &event.object, &resource, deleted, plan.metrics.as_ref())
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
                cause,
                resuming,
                base,
            })),
        };
    }
    if let Some(metrics) = &plan.metrics {
        metrics.handled(event.r#type);
    }
    if plan.keeps_body() && !deleted {
        *body = Some(event.object);
        return Ran {
            deleted: false,
            retry: None,
        };
    }
    Ran { deleted, retry: None }
}

/// Reads the object's record; a store that cannot answer is logged, and the object handled as
/// one without a record.
async fn read_record(progress: &Progress, object: &Value, resource: &Resource<'_>) -> Option<Box<Recorded>> {
    match progress.store.read(object, resource.key.lookup()).await {
        Ok(record) => record.map(|record| Box::new(Recorded::parse(&record))),
        Err(err) => {
            about!(
                warn,
                resource,
                "cannot read the progress recorded in {}: {err}; handled as an object never seen",
                progress.store.describe()
            );
            None
        }
    }
}

/// Why the event's handlers run, whether the object is resumed (it existed before this process),
/// and for an update from a record, the essence recorded.
fn cause_of(
    event: &Event,
    finalizes: bool,
    progress: Option<&Progress>,
    recorded: Option<&Recorded>,
) -> (Cause, bool, Option<Box<Value>>) {
    let object = &*event.object;
    // Without a progress store, the event's type says it all (the hot path of a stream).
    match (progress, event.r#type) {
        (_, EventType::Deleted) => return (Cause::Deleted, false, None),
        (None, EventType::Added) => return (Cause::Create, false, None),
        (None, _) => return (Cause::Update, false, None),
        (Some(_), _) => {}
    }
    let deleting = being_deleted(object);
    if deleting
        && finalizes
        && let Some(progress) = progress
        && has_finalizer(object, &progress.finalizer)
    {
        return (Cause::Finalize, false, None);
    }
    let Some(recorded) = recorded else {
        // Without a record: the object is new to this operator, or this is a later event of it.
        let cause = match (progress, event.r#type) {
            (Some(_), _) if deleting => Cause::Quiet,
            (_, EventType::Added) => Cause::Create,
            _ => Cause::Update,
        };
        return (cause, false, None);
    };
    let resuming = recorded.known && !deleting;
    if let Some(pending) = &recorded.pending {
        return (
            pending.cause,
            pending.resuming || resuming,
            recorded.essence.clone().map(Box::new),
        );
    }
    let Some(progress) = progress else {
        return (Cause::Quiet, resuming, None);
    };
    let now = essence(object, &progress.own_annotations);
    match (&recorded.essence, &recorded.digest) {
        (Some(essence), _) if *essence == now => (Cause::Quiet, resuming, None),
        (Some(essence), _) => (Cause::Update, resuming, Some(Box::new(essence.clone()))),
        (None, Some(digest)) if *digest == crate::store::progress::digest(&now) => (Cause::Quiet, resuming, None),
        // Only a digest: what changed is not known, `old` is null.
        (None, Some(_)) => (Cause::Update, resuming, Some(Box::new(Value::Null))),
        (None, None) => (Cause::Create, false, None),
    }
}

/// What to record of an event's handling, with the finalizer's part.
struct Recording<'a> {
    cause: Cause,
    finalizes: bool,
    /// The event's unfinished handlers, if a retry is to come.
    pending: Option<&'a Pending>,
    /// Whether the record had unfinished handlers (now finished, or not).
    had_pending: bool,
    /// The essence recorded before this event.
    previous: Option<&'a Value>,
}

impl Recording<'_> {
    /// Records it in the store (or in `patches`, for the annotations store); returns whether it
    /// was recorded.
    async fn write(
        &self,
        progress: &Progress,
        object: &Value,
        resource: &Resource<'_>,
        excluded: &str,
        patches: &mut Patches,
    ) -> bool {
        let mut own = Patch::new();
        let record = match (self.cause, self.pending) {
            (_, Some(pending)) => Some(Some(unfinished(self.previous, pending))),
            (Cause::Create | Cause::Update, None) => Some(Some(handled(essence(object, excluded)))),
            // Handled as recorded: nothing to write unless an unfinished event just finished.
            (Cause::Quiet, None) if self.had_pending => Some(Some(handled(essence(object, excluded)))),
            (Cause::Quiet, None) => None,
            (Cause::Finalize, None) => {
                remove_finalizer(object, &progress.finalizer, &mut own);
                None
            }
            // Gone: a record kept beside the object goes with it.
            (Cause::Deleted, None) => Some(None),
        };
        if self.finalizes
            && matches!(self.cause, Cause::Create | Cause::Update | Cause::Quiet)
            && !being_deleted(object)
            && !has_finalizer(object, &progress.finalizer)
        {
            add_finalizer(object, &progress.finalizer, &mut own);
        }
        let mut recorded = true;
        if let Some(record) = record
            && let Err(err) = progress
                .store
                .write(object, resource.key.lookup(), record, &mut own)
                .await
        {
            recorded = false;
            about!(
                warn,
                resource,
                "cannot record the progress in {}: {err}",
                progress.store.describe()
            );
        }
        patches.add_own(own);
        recorded
    }
}

/// Logs that an event left unfinished by an earlier process goes on.
fn about_resumed(resource: &Resource<'_>, handler: &str, retry: u32) {
    about!(
        info,
        resource,
        "resuming: handler `{handler}` was waiting for its retry {retry}"
    );
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
