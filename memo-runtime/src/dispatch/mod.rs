//! The event loop: routes events to resources, keeps each resource's memo, runs handlers one
//! resource at a time and up to `workers` resources at once, and fires timers.
//!
//! Resources are plain data in one map owned by this loop, not tasks: an idle resource costs its
//! map entry and its memo. With one worker, handlers run inline in the loop (no hand-off at all);
//! with more, a resource's state travels to a worker task with its queued work and comes back.

// The engine's own scheduler of delayed work; the loop below moves onto it next.
#[allow(dead_code)]
mod scheduler;

use crate::catalog::{Catalog, KindPlan};
use crate::in_flight::{InFlight, Watch};
use crate::inject::Env;
use crate::invoke::Bound;
use crate::metrics::Metrics;
use crate::resource::{Admitted, Lookup, Resource, ResourceKey};
use crate::retry::{self, PendingRetry, Verdict};
use crate::shard::Shard;
use crate::source::EventSource;
use crate::stop::Stop;
use crate::{invoke, Event, EventType, Logger, Result};
use hashbrown::hash_map::EntryRef;
use once_cell::race::OnceBox;
use serde_json::Value;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::time::delay_queue::{self, DelayQueue};

/// What a resource keeps between events.
pub(crate) struct ResourceState<M> {
    /// The handlers of the resource's kind. Part of the state, so that it travels to a worker
    /// and back by move, without touching a reference count shared by every resource of the kind.
    plan: Arc<KindPlan>,
    memo: M,
    /// Made when a handler first asks for it; one pointer until then.
    logger: OnceBox<Logger>,
    /// The latest object, kept only for kinds with timers (a timer sees the latest body).
    body: Option<Box<Value>>,
}

/// One unit of work for a resource.
enum Work {
    Event(Event),
    Timer(u16),
    /// A failed handler's next try (and the handlers after it).
    Retry(Box<PendingRetry>),
}

impl Work {
    fn is_event(&self) -> bool {
        matches!(self, Work::Event(_))
    }

    fn is_deleted_event(&self) -> bool {
        matches!(self, Work::Event(event) if event.r#type == EventType::Deleted)
    }
}

/// Work due later, in the one queue of delayed work: a timer's next run, or a retry.
#[derive(Clone, Copy)]
enum Delayed {
    Timer(u16),
    Retry,
}

/// A resource as the loop keeps it. Kept small: the map holds one per resource, so every byte
/// here is paid 100,000 times at 100,000 resources.
struct Slot<M> {
    /// `None` while a worker holds it.
    state: Option<ResourceState<M>>,
    /// What only some resources need, allocated when first needed.
    cold: Option<Box<Cold>>,
}

/// The rarely needed part of a [`Slot`].
#[derive(Default)]
struct Cold {
    /// Work that arrived while a worker held the state.
    pending: VecDeque<Work>,
    /// The scheduled run of each of the kind's timers (`None` while it runs or waits to).
    timer_keys: Box<[Option<delay_queue::Key>]>,
    /// A failed handler waiting for its retry: until it has run, the resource's later work waits
    /// in `pending`, in order.
    retry: Option<(Box<PendingRetry>, delay_queue::Key)>,
}

impl<M> Slot<M> {
    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Frees the cold part once it holds nothing: a kind without timers that was busy for a while
    /// goes back to its small idle size.
    fn release_idle_cold(&mut self) {
        if self
            .cold
            .as_ref()
            .is_some_and(|cold| cold.pending.is_empty() && cold.timer_keys.is_empty() && cold.retry.is_none())
        {
            self.cold = None;
        }
    }

    /// Whether a retry holds the resource's work back.
    fn waiting_for_retry(&self) -> bool {
        self.cold.as_ref().is_some_and(|cold| cold.retry.is_some())
    }

    /// Whether the resource waits to retry a create or update handler, which a deletion ends.
    fn retrying_before_deletion(&self) -> bool {
        self.cold.as_ref().is_some_and(|cold| {
            cold.retry
                .as_ref()
                .is_some_and(|(retry, _)| retry.event.r#type != EventType::Deleted)
        })
    }

    fn take_pending(&mut self) -> VecDeque<Work> {
        self.cold
            .as_mut()
            .map(|cold| std::mem::take(&mut cold.pending))
            .unwrap_or_default()
    }
}

type Resources<M> = hashbrown::HashMap<ResourceKey, Slot<M>, ahash::RandomState>;

struct Job<M> {
    key: ResourceKey,
    state: ResourceState<M>,
    first: Work,
    rest: VecDeque<Work>,
}

struct Done<M> {
    key: ResourceKey,
    state: ResourceState<M>,
    deleted: bool,
    /// Work after a `DELETED` event, not run: it belongs to a new incarnation of the resource.
    leftover: VecDeque<Work>,
    /// Units of work run, or skipped because of a stop.
    finished: usize,
    /// Events skipped because of a stop.
    dropped: usize,
    timers_ran: Vec<u16>,
    /// A handler failed and runs again later: the job stopped there, `leftover` waits for it.
    retry: Option<Box<PendingRetry>>,
    /// An event the job is done with, freed by the loop: the loop's thread allocated it (parsing
    /// a stream), and freeing it there avoids contending for the allocator with the parser.
    spent: Option<Event>,
}

pub(crate) struct Dispatcher<M> {
    operator_memo: M,
    catalog: Catalog,
    resources: Resources<M>,
    /// Delayed work of every resource: timers and retries.
    timers: DelayQueue<(ResourceKey, Delayed)>,
    /// Work admitted and not finished: with workers, what is with them or waits behind them;
    /// inline, what waits behind a retry.
    in_flight: usize,
    /// With workers: resources whose state is with a worker (one job each).
    jobs_out: usize,
    /// Retries waiting for their time (each a `Cold.retry`), for the metrics.
    retries_scheduled: usize,
    accepting_timers: bool,
    stop: Stop,
    /// The resources this replica handles; `None`: all.
    shard: Option<Shard>,
    /// Reused to build the lookup text of objects without a uid.
    lookup_buffer: String,
    /// `None` unless the operator serves metrics.
    metrics: Option<Metrics>,
}

impl<M: Clone + Send + Sync + 'static> Dispatcher<M> {
    pub(crate) fn new(
        operator_memo: M,
        catalog: Catalog,
        stop: Stop,
        shard: Option<Shard>,
        metrics: Option<Metrics>,
    ) -> Self {
        Dispatcher {
            operator_memo,
            catalog,
            resources: Resources::default(),
            timers: DelayQueue::new(),
            in_flight: 0,
            jobs_out: 0,
            retries_scheduled: 0,
            accepting_timers: true,
            stop,
            shard,
            lookup_buffer: String::new(),
            metrics,
        }
    }

    /// Sets the gauges of the metrics: once per turn of the loop, a store or two, rather than
    /// bookkeeping at every change.
    fn publish(&self) {
        if let Some(metrics) = &self.metrics {
            let waiting = self.in_flight.saturating_sub(self.jobs_out);
            metrics.queue_depth.set(i64::try_from(waiting).unwrap_or(i64::MAX));
            metrics
                .retries_scheduled
                .set(i64::try_from(self.retries_scheduled).unwrap_or(i64::MAX));
            metrics
                .resources
                .set(i64::try_from(self.resources.len()).unwrap_or(i64::MAX));
        }
    }

    /// Runs until the source ends (then drains what is queued) or a stop is requested (then
    /// starts nothing new and waits for what runs), and drops every resource memo. Fails with
    /// the source's failure, after the same steps. Retries scheduled for later are dropped, not
    /// waited for.
    pub(crate) async fn run(mut self, source: EventSource, workers: usize, in_flight: InFlight) -> Result<()> {
        let outcome = if workers <= 1 {
            self.run_inline(source, &in_flight.watch()).await
        } else {
            self.run_workers(source, workers, &in_flight).await
        };
        self.stop_timers("stopping");
        self.resources.clear();
        self.in_flight = 0;
        self.jobs_out = 0;
        self.publish();
        outcome
    }

    async fn run_inline(&mut self, mut source: EventSource, watch: &Watch) -> Result<()> {
        let stop = self.stop.clone();
        // Polled last, so only while nothing else is ready: polling it costs more than the
        // flag checked on every turn.
        let requested = stop.requested();
        tokio::pin!(requested);
        loop {
            if stop.is_requested() {
                return Ok(());
            }
            self.publish();
            tokio::select! {
                biased;
                Some(expired) = poll_fn(|cx| self.timers.poll_expired(cx)), if !self.timers.is_empty() => {
                    let (key, delayed) = expired.into_inner();
                    self.run_delayed_inline(key, delayed, watch).await;
                }
                event = source.next_or_failure() => match event {
                    Ok(Some(event)) => self.run_event_inline(event, watch).await,
                    Ok(None) => {
                        tracing::info!(target: "memo", "the source ended; stopping");
                        self.release_retries_inline(watch).await;
                        return Ok(());
                    }
                    Err(err) => {
                        self.release_retries_inline(watch).await;
                        return Err(err);
                    }
                },
                () = &mut requested => return Ok(()),
            }
        }
    }

    async fn run_event_inline(&mut self, event: Event, watch: &Watch) {
        let deleted = event.r#type == EventType::Deleted;
        let Some((key, slot)) = self.admit(&event) else {
            return;
        };
        if slot.waiting_for_retry() {
            if !(deleted && slot.retrying_before_deletion()) {
                slot.cold().pending.push_back(Work::Event(event));
                self.in_flight += 1;
                return;
            }
            self.cancel_retry(&key);
            return self.run_inline_work(key, Work::Event(event), watch).await;
        }
        // The common case, in the one lookup `admit` made: nothing waits, nothing to settle
        // unless the resource was deleted or a handler is to be retried.
        let Some(state) = slot.state.as_mut() else {
            return;
        };
        let ran = run_work(&key, state, Work::Event(event), watch).await;
        if ran.deleted || ran.retry.is_some() {
            self.settle_inline(key, ran, watch).await;
        }
    }

    async fn run_delayed_inline(&mut self, key: ResourceKey, delayed: Delayed, watch: &Watch) {
        let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
            return;
        };
        let work = match delayed {
            Delayed::Timer(timer) => {
                if let Some(cold) = slot.cold.as_mut() {
                    cold.timer_keys[usize::from(timer)] = None;
                }
                if slot.waiting_for_retry() {
                    slot.cold().pending.push_back(Work::Timer(timer));
                    self.in_flight += 1;
                    return;
                }
                Work::Timer(timer)
            }
            Delayed::Retry => match slot.cold.as_mut().and_then(|cold| cold.retry.take()) {
                Some((retry, _)) => {
                    self.retries_scheduled -= 1;
                    Work::Retry(retry)
                }
                None => return,
            },
        };
        self.run_inline_work(key, work, watch).await;
    }

    /// Runs `first` and then the resource's pending work, in order, until a retry holds it back
    /// or nothing is left. Inline, a resource's state never leaves its slot.
    async fn run_inline_work(&mut self, key: ResourceKey, first: Work, watch: &Watch) {
        let mut next = Some(first);
        while let Some(work) = next.take() {
            let Some(state) = self
                .resources
                .get_mut(&Lookup(key.lookup()))
                .and_then(|slot| slot.state.as_mut())
            else {
                return;
            };
            let timer = match work {
                Work::Timer(timer) => Some(timer),
                _ => None,
            };
            let ran = run_work(&key, state, work, watch).await;
            if let Some(timer) = timer {
                let interval = state.plan.timers[usize::from(timer)].interval;
                self.reschedule(&key, timer, interval);
            }
            if ran.deleted {
                return self.settle_inline(key, ran, watch).await;
            }
            if let Some(retry) = ran.retry {
                if self.schedule_retry(&key, retry) {
                    return;
                }
            }
            next = self.pop_pending(&key);
        }
        if let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) {
            slot.release_idle_cold();
        }
    }

    /// After work that deleted the resource (its memo is dropped, and events that waited behind
    /// a delete handler's retry start a new incarnation) or that is to be retried.
    async fn settle_inline(&mut self, key: ResourceKey, ran: Ran, watch: &Watch) {
        if ran.deleted {
            let leftover = self
                .forget(key.lookup())
                .map(|mut slot| slot.take_pending())
                .unwrap_or_default();
            self.in_flight -= leftover.len().min(self.in_flight);
            for work in leftover {
                if let Work::Event(event) = work {
                    // A new incarnation: admitted afresh, with a fresh memo.
                    Box::pin(self.run_event_inline(event, watch)).await;
                }
            }
            return;
        }
        if let Some(retry) = ran.retry {
            if !self.schedule_retry(&key, retry) {
                // Not held back after all (a deletion waits, or no retry is accepted now): what
                // waits runs now.
                if let Some(next) = self.pop_pending(&key) {
                    Box::pin(self.run_inline_work(key, next, watch)).await;
                }
            }
        }
    }

    /// The source ended: scheduled retries are dropped, and the work that waited behind them runs.
    async fn release_retries_inline(&mut self, watch: &Watch) {
        self.stop_timers("the source ended");
        let waiting: Vec<ResourceKey> = self
            .resources
            .iter()
            .filter(|(_, slot)| slot.cold.as_ref().is_some_and(|cold| !cold.pending.is_empty()))
            .map(|(key, _)| key.clone())
            .collect();
        for key in waiting {
            if let Some(first) = self.pop_pending(&key) {
                self.run_inline_work(key, first, watch).await;
            }
        }
    }

    /// Inline: the next work waiting behind a resource's retry, if any.
    fn pop_pending(&mut self, key: &ResourceKey) -> Option<Work> {
        let next = self
            .resources
            .get_mut(&Lookup(key.lookup()))
            .and_then(|slot| slot.cold.as_mut())
            .and_then(|cold| cold.pending.pop_front());
        self.in_flight -= usize::from(next.is_some()).min(self.in_flight);
        next
    }

    async fn run_workers(&mut self, mut source: EventSource, workers: usize, in_flight: &InFlight) -> Result<()> {
        let (jobs, job_queue) = async_channel::unbounded::<Job<M>>();
        let (done_sender, mut done) = mpsc::unbounded_channel::<Done<M>>();
        let pool: Vec<_> = (0..workers)
            .map(|index| {
                let work = worker(
                    job_queue.clone(),
                    done_sender.clone(),
                    self.stop.clone(),
                    in_flight.watch(),
                );
                crate::dedicated::spawn(format!("memo-worker-{index}"), work)
            })
            .collect();
        drop((job_queue, done_sender));
        let in_flight_limit = 1024.max(workers * 256);
        // Reading resumes only once half the window is free, so that it takes events in batches
        // rather than one per finished job.
        let resume_below = in_flight_limit / 2;
        let mut batch = Vec::new();
        let mut reading = true;
        let mut stopping = false;
        let mut outcome = Ok(());
        let stop = self.stop.clone();
        let requested = stop.requested();
        tokio::pin!(requested);
        while reading || self.in_flight > 0 {
            if !stopping && stop.is_requested() {
                stopping = true;
                reading = false;
                self.stop_timers("stopping");
                self.drop_pending();
                continue;
            }
            self.publish();
            tokio::select! {
                biased;
                Some(finished) = done.recv() => {
                    self.finish(finished, &jobs);
                    while let Ok(finished) = done.try_recv() {
                        self.finish(finished, &jobs);
                    }
                }
                Some(expired) = poll_fn(|cx| self.timers.poll_expired(cx)), if reading && !self.timers.is_empty() => {
                    let (key, delayed) = expired.into_inner();
                    self.run_delayed(key, delayed, &jobs);
                }
                event = source.next_or_failure(), if reading && self.in_flight <= resume_below => match event {
                    Ok(Some(event)) => {
                        // Take what else is ready first, then hand it all over: interleaving
                        // reading (parsing, for a stream) with hand-offs would wake an idle
                        // worker for every event; a burst wakes each worker once.
                        batch.push(event);
                        while self.in_flight + batch.len() < in_flight_limit && !stop.is_requested() {
                            let Some(event) = source.try_next() else { break };
                            batch.push(event);
                        }
                        for event in batch.drain(..) {
                            self.route(event, &jobs);
                        }
                    }
                    Ok(None) => {
                        tracing::info!(target: "memo", "the source ended; finishing the queued events");
                        reading = false;
                        self.release_retries(&jobs);
                    }
                    Err(err) => {
                        reading = false;
                        self.release_retries(&jobs);
                        outcome = Err(err);
                    }
                },
                // Polled last, as in `run_inline`; the flag above does the work.
                () = &mut requested, if !stopping => {}
            }
        }
        jobs.close();
        for worker in pool {
            // A worker ends once the queue is closed and empty; one that is gone has nothing to say.
            let _ = worker.await;
        }
        outcome
    }

    fn run_delayed(&mut self, key: ResourceKey, delayed: Delayed, jobs: &async_channel::Sender<Job<M>>) {
        let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
            return;
        };
        match delayed {
            Delayed::Timer(timer) => {
                if let Some(cold) = slot.cold.as_mut() {
                    cold.timer_keys[usize::from(timer)] = None;
                }
                self.jobs_out += usize::from(enqueue(key, slot, Work::Timer(timer), jobs));
            }
            Delayed::Retry => {
                let Some((retry, _)) = slot.cold.as_mut().and_then(|cold| cold.retry.take()) else {
                    return;
                };
                self.retries_scheduled -= 1;
                // The resource is idle while it waits; its pending work follows the retry.
                let Some(state) = slot.state.take() else {
                    tracing::error!(target: "memo", "internal error: a resource waiting for a retry was busy; the retry was lost");
                    return;
                };
                let rest = slot.take_pending();
                send(
                    jobs,
                    Job {
                        key,
                        state,
                        first: Work::Retry(retry),
                        rest,
                    },
                );
                self.jobs_out += 1;
            }
        }
        self.in_flight += 1;
    }

    fn route(&mut self, event: Event, jobs: &async_channel::Sender<Job<M>>) {
        let deleted = event.r#type == EventType::Deleted;
        let Some((key, slot)) = self.admit(&event) else {
            return;
        };
        let sent = if deleted && slot.retrying_before_deletion() {
            self.cancel_retry(&key);
            let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
                return;
            };
            enqueue(key, slot, Work::Event(event), jobs)
        } else {
            enqueue(key, slot, Work::Event(event), jobs)
        };
        self.jobs_out += usize::from(sent);
        self.in_flight += 1;
    }

    /// The source ended: scheduled retries are dropped, and the work that waited behind them is
    /// handed to the workers.
    fn release_retries(&mut self, jobs: &async_channel::Sender<Job<M>>) {
        self.stop_timers("the source ended");
        for (key, slot) in self.resources.iter_mut() {
            if slot.state.is_none() {
                continue;
            }
            let mut rest = slot.take_pending();
            if let Some(first) = rest.pop_front() {
                let state = slot.state.take();
                if let Some(state) = state {
                    send(
                        jobs,
                        Job {
                            key: key.clone(),
                            state,
                            first,
                            rest,
                        },
                    );
                    self.jobs_out += 1;
                }
            }
        }
    }

    /// A stop was requested: work waiting behind busy resources will not start.
    fn drop_pending(&mut self) {
        let mut dropped = 0;
        for slot in self.resources.values_mut() {
            let pending = slot.take_pending();
            self.in_flight -= pending.len();
            dropped += pending.iter().filter(|work| work.is_event()).count();
        }
        self.stop.count_dropped(dropped);
    }

    fn finish(&mut self, mut done: Done<M>, jobs: &async_channel::Sender<Job<M>>) {
        drop(done.spent.take());
        self.in_flight -= done.finished;
        self.jobs_out = self.jobs_out.saturating_sub(1);
        self.stop.count_dropped(done.dropped);
        let key = done.key;
        if done.deleted {
            let pending = self
                .forget(key.lookup())
                .map(|mut slot| slot.take_pending())
                .unwrap_or_default();
            let stopping = self.stop.is_requested();
            for work in done.leftover.into_iter().chain(pending) {
                self.in_flight -= 1;
                if let Work::Event(event) = work {
                    if stopping {
                        self.stop.count_dropped(1);
                    } else {
                        // A new incarnation: admitted afresh, with a fresh memo.
                        self.route(event, jobs);
                    }
                }
            }
            return;
        }
        for &timer in &done.timers_ran {
            let interval = done.state.plan.timers[usize::from(timer)].interval;
            self.reschedule(&key, timer, interval);
        }
        let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
            return;
        };
        // What the job did not get to goes first, before what arrived meanwhile.
        let mut rest = done.leftover;
        rest.append(&mut slot.take_pending());
        let Some(retry) = done.retry else {
            self.jobs_out += usize::from(continue_with(key, slot, done.state, rest, jobs));
            return;
        };
        slot.state = Some(done.state);
        slot.cold().pending = rest;
        if self.schedule_retry(&key, retry) {
            return;
        }
        // Not held back after all: a deletion waits, or no retry is accepted now.
        let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
            return;
        };
        let mut rest = slot.take_pending();
        let Some(state) = slot.state.take() else {
            return;
        };
        if self.stop.is_requested() {
            self.in_flight -= rest.len();
            self.stop
                .count_dropped(rest.iter().filter(|work| work.is_event()).count());
            rest.clear();
        }
        self.jobs_out += usize::from(continue_with(key, slot, state, rest, jobs));
    }

    /// Holds the resource's work back until `retry` has run, or, if a `DELETED` already waits
    /// (or no more delayed work is accepted), does not: returns whether the retry is scheduled.
    fn schedule_retry(&mut self, key: &ResourceKey, retry: Box<PendingRetry>) -> bool {
        let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
            return false;
        };
        if !self.accepting_timers {
            retry::log_dropped(1, "stopping");
            return false;
        }
        let cold = slot.cold();
        if retry.event.r#type != EventType::Deleted {
            if let Some(deletion) = cold.pending.iter().position(Work::is_deleted_event) {
                // The resource is gone already: the retry and what waits before the deletion
                // are moot.
                let superseded: Vec<Work> = cold.pending.drain(..deletion).collect();
                let events = superseded.iter().filter(|work| work.is_event()).count();
                self.in_flight -= superseded.len().min(self.in_flight);
                if let Some(state) = slot.state.as_ref() {
                    log_cancelled(key, state, &retry, events);
                }
                return false;
            }
        }
        let delay_key = self.timers.insert((key.clone(), Delayed::Retry), retry.delay);
        cold.retry = Some((retry, delay_key));
        self.retries_scheduled += 1;
        true
    }

    /// A `DELETED` arrived for a resource waiting to retry a create or update handler: the retry,
    /// and the work waiting behind it, are moot.
    fn cancel_retry(&mut self, key: &ResourceKey) {
        let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) else {
            return;
        };
        let Some(cold) = slot.cold.as_mut() else {
            return;
        };
        let Some((retry, delay_key)) = cold.retry.take() else {
            return;
        };
        self.retries_scheduled -= 1;
        self.timers.try_remove(&delay_key);
        let superseded = std::mem::take(&mut cold.pending);
        self.in_flight -= superseded.len().min(self.in_flight);
        let events = superseded.iter().filter(|work| work.is_event()).count();
        if let Some(state) = slot.state.as_ref() {
            log_cancelled(key, state, &retry, events);
        }
    }

    /// Validates an event and finds or creates its resource, in one lookup. Returns the resource
    /// key and slot, or `None` (logged) if the event is invalid or no handler wants its kind.
    /// A new resource's identity is read here, once, and travels with it from then on.
    fn admit(&mut self, event: &Event) -> Option<(ResourceKey, &mut Slot<M>)> {
        let admitted = match Admitted::read(&event.object) {
            Ok(admitted) => admitted,
            Err(missing) => {
                reject(event, &missing);
                return None;
            }
        };
        let Some(plan) = self.catalog.plan(admitted.kind, admitted.api_version) else {
            if let Some(metrics) = &self.metrics {
                metrics.received_unhandled_kind(event.r#type);
            }
            tracing::trace!(target: "memo", kind = admitted.kind, name = admitted.name, "no handler for this kind; event ignored");
            return None;
        };
        if let Some(metrics) = &plan.metrics {
            metrics.received(event.r#type);
        }
        let lookup = admitted.lookup(&mut self.lookup_buffer);
        if self.shard.is_some_and(|shard| !shard.owns(lookup)) {
            tracing::trace!(target: "memo", kind = admitted.kind, name = admitted.name, "another shard's resource; event ignored");
            return None;
        }
        match self.resources.entry_ref(&Lookup(lookup)) {
            EntryRef::Occupied(entry) => Some((entry.key().clone(), entry.into_mut())),
            EntryRef::Vacant(entry) => {
                let key = ResourceKey::new(lookup, &admitted);
                let cold = plan.has_timers().then(|| {
                    let timer_keys = (0..=u16::MAX)
                        .zip(plan.timers.iter())
                        .map(|(index, spec)| {
                            Some(
                                self.timers
                                    .insert((key.clone(), Delayed::Timer(index)), spec.initial_delay),
                            )
                        })
                        .collect();
                    Box::new(Cold {
                        pending: VecDeque::new(),
                        timer_keys,
                        retry: None,
                    })
                });
                let slot = Slot {
                    state: Some(ResourceState {
                        plan: Arc::clone(plan),
                        memo: self.operator_memo.clone(),
                        logger: OnceBox::new(),
                        body: None,
                    }),
                    cold,
                };
                Some((key.clone(), entry.insert_with_key(key, slot)))
            }
        }
    }

    fn reschedule(&mut self, key: &ResourceKey, timer: u16, interval: std::time::Duration) {
        if !self.accepting_timers {
            return;
        }
        if let Some(slot) = self.resources.get_mut(&Lookup(key.lookup())) {
            let scheduled = self.timers.insert((key.clone(), Delayed::Timer(timer)), interval);
            slot.cold().timer_keys[usize::from(timer)] = Some(scheduled);
        }
    }

    /// Drops a resource (and its memo) and cancels its timers and retry.
    fn forget(&mut self, lookup: &str) -> Option<Slot<M>> {
        let slot = self.resources.remove(&Lookup(lookup))?;
        if let Some(cold) = &slot.cold {
            for timer_key in cold.timer_keys.iter().flatten() {
                self.timers.try_remove(timer_key);
            }
            if let Some((_, retry_key)) = &cold.retry {
                self.timers.try_remove(retry_key);
                self.retries_scheduled -= 1;
            }
        }
        Some(slot)
    }

    /// No more delayed work: timers stop, and scheduled retries are dropped (logged with `why`),
    /// releasing the work that waited behind them.
    fn stop_timers(&mut self, why: &str) {
        self.accepting_timers = false;
        self.timers.clear();
        let mut dropped = 0;
        for slot in self.resources.values_mut() {
            if let Some(cold) = slot.cold.as_mut() {
                dropped += usize::from(cold.retry.take().is_some());
            }
        }
        self.retries_scheduled = 0;
        retry::log_dropped(dropped, why);
    }
}

/// Logs a retry that a deletion cancelled, naming the handler.
fn log_cancelled<M>(key: &ResourceKey, state: &ResourceState<M>, retry: &PendingRetry, events_dropped: usize) {
    if let Some(bound) = state.plan.handlers(retry.event.r#type).get(retry.handler) {
        let resource = Resource {
            kind: &state.plan.kind,
            key,
        };
        retry::log_cancelled(bound.handler, &resource, events_dropped);
    }
}

/// Hands a resource's next work to a worker, or leaves it idle if there is none. Returns whether
/// it sent a job.
fn continue_with<M>(
    key: ResourceKey,
    slot: &mut Slot<M>,
    state: ResourceState<M>,
    mut rest: VecDeque<Work>,
    jobs: &async_channel::Sender<Job<M>>,
) -> bool {
    match rest.pop_front() {
        Some(first) => {
            send(
                jobs,
                Job {
                    key,
                    state,
                    first,
                    rest,
                },
            );
            true
        }
        None => {
            slot.state = Some(state);
            slot.release_idle_cold();
            false
        }
    }
}

/// Queues work for a resource, or sends it to a worker right away if the resource is idle and
/// not waiting for a retry. Returns whether it sent a job.
fn enqueue<M>(key: ResourceKey, slot: &mut Slot<M>, work: Work, jobs: &async_channel::Sender<Job<M>>) -> bool {
    if slot.waiting_for_retry() {
        slot.cold().pending.push_back(work);
        return false;
    }
    match slot.state.take() {
        Some(state) => {
            // Work that waited behind a retry just cancelled goes first.
            let mut rest = slot.take_pending();
            let first = match rest.pop_front() {
                Some(earlier) => {
                    rest.push_back(work);
                    earlier
                }
                None => work,
            };
            let job = Job {
                key,
                state,
                first,
                rest,
            };
            send(jobs, job);
            true
        }
        None => {
            slot.cold().pending.push_back(work);
            false
        }
    }
}

fn send<M>(jobs: &async_channel::Sender<Job<M>>, job: Job<M>) {
    if jobs.try_send(job).is_err() {
        // Unbounded and never closed while the loop runs; reaching this is a bug worth a log.
        tracing::error!(target: "memo", "internal error: the worker queue is closed; work was lost");
    }
}

fn reject(event: &Event, missing: &crate::resource::Missing) {
    tracing::error!(
        target: "memo",
        r#type = event.r#type.as_str(),
        kind = event.kind().unwrap_or_default(),
        name = event.name().unwrap_or_default(),
        "event rejected: {missing}"
    );
}

async fn worker<M: Send + Sync + 'static>(
    jobs: async_channel::Receiver<Job<M>>,
    done: mpsc::UnboundedSender<Done<M>>,
    stop: Stop,
    watch: Arc<Watch>,
) {
    let work = async {
        loop {
            let job = match next_job_soon(&jobs) {
                Some(job) => job,
                None => match jobs.recv().await {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            if done.send(run_job(job, &stop, &watch).await).is_err() {
                return;
            }
        }
    };
    // Past the shutdown deadline, what still runs is cancelled (an async handler) or left behind
    // on this thread (a sync one, which nothing can interrupt).
    tokio::select! {
        biased;
        () = stop.abandoned() => {}
        () = work => {}
    }
}

/// A job that arrives within a few microseconds, without parking the thread: waking a parked
/// worker thread costs the loop a system call and the worker a scheduling delay, several times
/// the cost of a small handler; a busy loop hands the next job over in far less than that.
fn next_job_soon<M>(jobs: &async_channel::Receiver<Job<M>>) -> Option<Job<M>> {
    const SPINS: u32 = 64;
    const YIELDS: u32 = 8;
    for _ in 0..SPINS {
        if let Ok(job) = jobs.try_recv() {
            return Some(job);
        }
        std::hint::spin_loop();
    }
    for _ in 0..YIELDS {
        std::thread::yield_now();
        if let Ok(job) = jobs.try_recv() {
            return Some(job);
        }
    }
    None
}

/// Runs a resource's queued work in order, stopping after a `DELETED` event or a failure to be
/// retried, and skipping what has not started once a stop is requested.
async fn run_job<M: Send + Sync + 'static>(job: Job<M>, stop: &Stop, watch: &Watch) -> Done<M> {
    let Job {
        key,
        mut state,
        first,
        mut rest,
    } = job;
    let queued = 1 + rest.len();
    let mut timers_ran = Vec::new();
    let mut deleted = false;
    let mut dropped = 0;
    let mut spent = None;
    let mut retry = None;
    let mut next = Some(first);
    while let Some(work) = next.take().or_else(|| rest.pop_front()) {
        if stop.is_requested() {
            match work {
                Work::Event(_) => dropped += 1,
                Work::Retry(_) => retry::log_dropped(1, "stopping"),
                Work::Timer(_) => {}
            }
            continue;
        }
        if let Work::Timer(timer) = work {
            timers_ran.push(timer);
        }
        let ran = run_work(&key, &mut state, work, watch).await;
        spent = ran.spent.or(spent);
        if ran.deleted {
            deleted = true;
            break;
        }
        if ran.retry.is_some() {
            retry = ran.retry;
            break;
        }
    }
    Done {
        finished: queued - rest.len(),
        key,
        state,
        deleted,
        leftover: rest,
        dropped,
        timers_ran,
        retry,
        spent,
    }
}

/// What running one unit of work came to.
struct Ran {
    /// The resource was deleted (its `DELETED` handlers are done).
    deleted: bool,
    /// The event, if the resource does not keep it.
    spent: Option<Event>,
    /// A handler failed and runs again later.
    retry: Option<Box<PendingRetry>>,
}

/// Runs one unit of work for a resource.
async fn run_work<M: Send + Sync + 'static>(
    key: &ResourceKey,
    state: &mut ResourceState<M>,
    work: Work,
    watch: &Watch,
) -> Ran {
    let ResourceState {
        plan,
        memo,
        logger,
        body,
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
            let env = Env {
                body: body.as_deref(),
                event: None,
                resource: Some(resource),
                logger,
                watch,
            };
            if let Err(err) = invoke::call(&spec.handler, memo, &env).await {
                invoke::report(spec.handler.handler, &env, &err);
            }
            return Ran {
                deleted: false,
                spent: None,
                retry: None,
            };
        }
    };
    let failed = {
        let env = Env {
            body: Some(&event.object),
            event: Some(&event),
            resource: Some(resource),
            logger,
            watch,
        };
        let mut failed = None;
        // Only a failure, or a success after retries, has anything to settle.
        for (index, bound) in plan.handlers(event.r#type).iter().enumerate().skip(first) {
            let outcome = invoke::call(bound, memo, &env).await;
            let retries_done = if index == first { retries_done } else { 0 };
            if outcome.is_ok() && retries_done == 0 {
                continue;
            }
            if let Some(delay) = settle_handler(bound, outcome, retries_done, &env, &resource) {
                failed = Some((index, retries_done + 1, delay));
                break;
            }
        }
        failed
    };
    if let Some((handler, attempt, delay)) = failed {
        return Ran {
            deleted: false,
            spent: None,
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
    if plan.has_timers() && !deleted {
        *body = Some(Box::new(event.object));
        return Ran {
            deleted: false,
            spent: None,
            retry: None,
        };
    }
    Ran {
        deleted,
        spent: Some(event),
        retry: None,
    }
}

/// Logs how a handler's call went (a success only after retries); returns the delay if it is to
/// be retried.
fn settle_handler(
    bound: &Bound,
    outcome: crate::inject::Outcome,
    retries_done: u32,
    env: &Env<'_>,
    resource: &Resource<'_>,
) -> Option<std::time::Duration> {
    let handler = bound.handler;
    match outcome {
        Ok(()) => {
            retry::log_recovered(handler, resource, retries_done);
            None
        }
        Err(err) if retry::retried(handler) => match retry::verdict(&handler.retry, &err, retries_done) {
            Verdict::Retry(delay) => {
                retry::log_temporary(handler, resource, &err, delay);
                if let Some(metrics) = &bound.metrics {
                    metrics.retry_scheduled();
                }
                Some(delay)
            }
            verdict => {
                retry::log_final(handler, resource, &err, &verdict, retries_done);
                None
            }
        },
        Err(err) => {
            invoke::report(handler, env, &err);
            None
        }
    }
}
