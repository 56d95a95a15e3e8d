//! A lane: a share of the resources (each one's by the hash of its key), their states and their
//! delayed work, with every scheduling decision made here once — what runs now, what waits
//! behind a retry, what a deletion cancels, what the end of the source or a stop releases —
//! whether the operator has one lane or several.
//!
//! A lane runs its resources' handlers itself, one at a time, in the order their work came: a
//! resource's state never leaves its lane, so nothing crosses threads per event.

use super::batch::Batch;
use super::scheduler::{Fired, Scheduler};
use super::work::{Ran, ResourceState, Work, log_cancelled, reject, run_work};
use crate::api::error::Result;
use crate::api::event::{Event, EventType};
use crate::api::resource::{Admitted, Lookup, ResourceKey, known_uid};
use crate::api::shard::{Held, Sharding};
use crate::exec::retry::{self, PendingRetry};
use crate::exec::stop::Stop;
use crate::exec::writeback::Writeback;
use crate::observe::in_flight::Watch;
use crate::observe::metrics::Metrics;
use crate::plan::catalog::{Catalog, KindPlan};
use crate::source::EventSource;
use hashbrown::hash_map::EntryRef;
use once_cell::race::OnceBox;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::mpsc;

type Resources<M> = hashbrown::HashMap<ResourceKey, ResourceState<M>, ahash::RandomState>;

/// Where a lane's events come from: the source itself when it is the only lane, or the batches
/// the router hands it (and where the lane says which resources it forgot).
pub(crate) enum Inbox {
    Source(EventSource),
    Routed {
        events: mpsc::Receiver<Batch>,
        forgotten: mpsc::UnboundedSender<(Box<str>, u32)>,
    },
}

/// What an inbox brought.
enum Next {
    /// One event of the source (the one lane's fast path: no batch to fill and drain).
    One(Event),
    /// A batch from the router.
    Batch(Batch),
    /// No more.
    End,
}

impl Inbox {
    /// The next events, or the source's failure.
    async fn next(&mut self) -> Result<Next> {
        match self {
            Inbox::Source(source) => Ok(source.next_or_failure().await?.map_or(Next::End, Next::One)),
            Inbox::Routed { events, .. } => Ok(events.recv().await.map_or(Next::End, Next::Batch)),
        }
    }

    /// The source's next event if it is there now (a channel's batch already taken, a document
    /// already read); nothing from a router, whose batches come whole.
    fn ready(&mut self) -> Option<Event> {
        match self {
            Inbox::Source(source) => source.try_next(),
            Inbox::Routed { .. } => None,
        }
    }
}

/// How many events that are there already the lane handles in a row before it looks at its
/// scheduler and the stop again: a timer comes due at most this many events late.
const IN_A_ROW: usize = 64;

/// A lane's figures: what the router handed it (written by the router), and what the lane took
/// and holds (written by the lane), read by the router, the metrics and the stop.
///
/// Aligned to cache lines of its own: the lane writes it for every event, and sharing a line with
/// another lane's figures (two small allocations side by side) would bounce that line between
/// the two lanes' cores on every event.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct LaneStats {
    /// Events the router handed this lane (with several lanes).
    pub(crate) handed: AtomicU64,
    /// Events this lane took up (to run, or to hold behind a retry); what was handed and not
    /// taken is dropped by a stop. Kept with several lanes, or with metrics.
    pub(crate) taken: AtomicU64,
    /// Events done with, always kept with several lanes: the router gives a new resource to the
    /// lane with the least work in hand, so that a lane stuck in a handler gets no more.
    pub(crate) finished: AtomicU64,
    pub(crate) resources: AtomicUsize,
    pub(crate) held: AtomicUsize,
    pub(crate) retries: AtomicUsize,
}

/// The resources of one lane.
struct Table<M> {
    operator_memo: M,
    catalog: Catalog,
    resources: Resources<M>,
    shard: Option<Sharding>,
    /// Reused to build the lookup text of objects without a uid.
    lookup_buffer: String,
    metrics: Option<Metrics>,
    stats: Arc<LaneStats>,
}

/// A resource as an event finds it.
struct Admission<'a, M> {
    /// Borrowed from the table: a clone would cost two atomic counts per event.
    key: &'a ResourceKey,
    state: &'a mut ResourceState<M>,
    created: bool,
    /// The lease held on the resource's bucket, with `--shard auto`.
    held: Option<Held<'a>>,
}

impl<M: Clone> Table<M> {
    /// Validates an event and finds or creates its resource, in one lookup; `None` (logged) if
    /// the event is invalid, no handler wants its kind, or another shard has it. A new resource's
    /// identity is read here, once, and travels with it from then on.
    fn admit(&mut self, event: &Event) -> Option<Admission<'_, M>> {
        let Table {
            operator_memo,
            catalog,
            resources,
            shard,
            lookup_buffer,
            metrics,
            stats,
        } = self;
        let count = resources.len();
        // Only with leased buckets: the lookup is not read for nothing on the common path.
        let held = |key: &ResourceKey| shard.as_ref().and_then(|shard| shard.held(key.lookup()));
        // A resource known by its uid: its kind, name and shard were read and checked when it was
        // admitted and cannot change under one uid, so only the uid is read, as a hand-written
        // loop would; the events of a busy resource touch little of their (often cold) object.
        if let Some(uid) = known_uid(&event.object) {
            return match resources.entry_ref(&Lookup(uid)) {
                // With leased buckets, a known resource's bucket may have moved away.
                EntryRef::Occupied(_) if shard.as_ref().is_some_and(|shard| shard.moves() && !shard.owns(uid)) => {
                    tracing::trace!(target: "memo", uid, "the resource's bucket is another replica's now; event ignored");
                    None
                }
                EntryRef::Occupied(entry) => {
                    let (key, state) = entry.into_entry();
                    if let Some(metrics) = &state.plan.metrics {
                        metrics.received(event.r#type);
                    }
                    Some(Admission {
                        held: held(key),
                        key,
                        state,
                        created: false,
                    })
                }
                EntryRef::Vacant(entry) => {
                    let (admitted, plan) = identify(catalog, metrics, shard.as_ref(), event, uid)?;
                    let (key, state) = new_resource(&admitted, plan, uid, operator_memo, metrics, stats, count, event)?;
                    let (key, state) = entry.insert_entry_with_key(key, state).into_entry();
                    Some(Admission {
                        held: held(key),
                        key,
                        state,
                        created: true,
                    })
                }
            };
        }
        let admitted = read(event)?;
        let lookup = admitted.lookup(lookup_buffer);
        let (admitted, plan) = identify_read(catalog, metrics, shard.as_ref(), event, admitted, lookup)?;
        match resources.entry_ref(&Lookup(lookup)) {
            EntryRef::Occupied(entry) => {
                let (key, state) = entry.into_entry();
                Some(Admission {
                    held: held(key),
                    key,
                    state,
                    created: false,
                })
            }
            EntryRef::Vacant(entry) => {
                let (key, state) = new_resource(&admitted, plan, lookup, operator_memo, metrics, stats, count, event)?;
                let (key, state) = entry.insert_entry_with_key(key, state).into_entry();
                Some(Admission {
                    held: held(key),
                    key,
                    state,
                    created: true,
                })
            }
        }
    }
}

/// A new resource's key and state; `None` (logged) if its namespace is not a string.
#[allow(clippy::too_many_arguments)]
fn new_resource<M: Clone>(
    admitted: &Admitted<'_>,
    plan: &Arc<KindPlan>,
    lookup: &str,
    operator_memo: &M,
    metrics: &Option<Metrics>,
    stats: &LaneStats,
    count: usize,
    event: &Event,
) -> Option<(ResourceKey, ResourceState<M>)> {
    if let Err(wrong) = admitted.checked_namespace() {
        reject(event, &wrong);
        return None;
    }
    if metrics.is_some() {
        stats.resources.store(count + 1, Ordering::Relaxed);
    }
    let state = ResourceState {
        plan: Arc::clone(plan),
        memo: operator_memo.clone(),
        logger: OnceBox::new(),
        body: None,
        seq: 0,
        fresh: true,
        finalized: false,
    };
    Some((ResourceKey::new(lookup, admitted), state))
}

/// An event's identity, read and checked; `None` (logged) if it is invalid.
fn read(event: &Event) -> Option<Admitted<'_>> {
    Admitted::read(&event.object)
        .map_err(|missing| reject(event, &missing))
        .ok()
}

/// [`identify_read`] of an event not read yet.
fn identify<'e, 'c>(
    catalog: &'c mut Catalog,
    metrics: &Option<Metrics>,
    shard: Option<&Sharding>,
    event: &'e Event,
    lookup: &str,
) -> Option<(Admitted<'e>, &'c Arc<KindPlan>)> {
    let admitted = read(event)?;
    identify_read(catalog, metrics, shard, event, admitted, lookup)
}

/// Finds the plan of a new resource's kind (counting the event there) and checks its shard;
/// `None` (logged) if no handler wants its kind or another shard has it.
fn identify_read<'e, 'c>(
    catalog: &'c mut Catalog,
    metrics: &Option<Metrics>,
    shard: Option<&Sharding>,
    event: &'e Event,
    admitted: Admitted<'e>,
    lookup: &str,
) -> Option<(Admitted<'e>, &'c Arc<KindPlan>)> {
    let Some(plan) = catalog.plan(admitted.kind, admitted.api_version) else {
        if let Some(metrics) = metrics {
            metrics.received_unhandled_kind(event.r#type);
        }
        tracing::trace!(target: "memo", kind = admitted.kind, name = admitted.name, "no handler for this kind; event ignored");
        return None;
    };
    if let Some(metrics) = &plan.metrics {
        metrics.received(event.r#type);
    }
    if shard.is_some_and(|shard| !shard.owns(lookup)) {
        tracing::trace!(target: "memo", kind = admitted.kind, name = admitted.name, "another shard's resource; event ignored");
        return None;
    }
    Some((admitted, plan))
}

pub(crate) struct Lane<M> {
    table: Table<M>,
    scheduler: Scheduler<ResourceKey, Box<PendingRetry>, Work>,
    stop: Stop,
    stats: Arc<LaneStats>,
    /// Events taken from the inbox, for `stats`.
    taken: u64,
    /// Where to say which resources this lane forgot, with a router.
    forgotten: Option<mpsc::UnboundedSender<(Box<str>, u32)>>,
    /// Where handlers' patches and outcome Events go.
    out: Writeback,
}

impl<M: Clone + Send + Sync + 'static> Lane<M> {
    pub(crate) fn new(
        operator_memo: M,
        catalog: Catalog,
        stop: Stop,
        shard: Option<Sharding>,
        metrics: Option<Metrics>,
        stats: Arc<LaneStats>,
        out: Writeback,
    ) -> Self {
        Lane {
            table: Table {
                operator_memo,
                catalog,
                resources: Resources::default(),
                shard,
                lookup_buffer: String::new(),
                metrics,
                stats: Arc::clone(&stats),
            },
            scheduler: Scheduler::default(),
            stop,
            stats,
            taken: 0,
            forgotten: None,
            out,
        }
    }

    /// Handles what the inbox brings and what comes due, until the inbox ends (then runs what
    /// waited behind retries, which are dropped) or a stop is requested (then drops what has not
    /// started). Drops every resource memo before it returns. Fails with the source's failure,
    /// after the same steps as its end.
    pub(crate) async fn run(mut self, mut inbox: Inbox, watch: &Watch) -> Result<()> {
        let stop = self.stop.clone();
        // Polled last, so only while nothing else is ready: polling it costs more than the flag
        // checked on every turn.
        let requested = stop.requested();
        tokio::pin!(requested);
        if let Inbox::Routed { forgotten, .. } = &inbox {
            self.forgotten = Some(forgotten.clone());
        }
        let outcome = loop {
            if stop.is_requested() {
                break Ok(());
            }
            self.update_stats();
            tokio::select! {
                biased;
                // Only polled with something scheduled: most kinds have no timers.
                (key, fired) = self.scheduler.fired(), if !self.scheduler.is_idle() => self.fire(key, fired, watch).await,
                next = inbox.next() => match next {
                    Ok(Next::One(event)) => {
                        self.handle_one(event, watch).await;
                        // The rest of what is there, without a turn of the `select!` each.
                        for _ in 1..IN_A_ROW {
                            if stop.is_requested() {
                                break;
                            }
                            let Some(event) = inbox.ready() else { break };
                            self.handle_one(event, watch).await;
                        }
                    }
                    Ok(Next::Batch(batch)) => self.handle_batch(batch, watch).await,
                    // With a router, a stop also closes the inbox: that is no end of the source.
                    Ok(Next::End) if stop.is_requested() => break Ok(()),
                    Ok(Next::End) => {
                        self.finish("the source ended", watch).await;
                        break Ok(());
                    }
                    Err(err) => {
                        self.finish("the source ended", watch).await;
                        break Err(err);
                    }
                },
                () = &mut requested => {}
            }
        };
        if stop.is_requested() {
            self.drop_the_rest();
        }
        self.table.resources.clear();
        self.update_stats();
        outcome
    }

    /// An event the lane read from the source itself.
    async fn handle_one(&mut self, event: Event, watch: &Watch) {
        if self.stop.is_requested() {
            self.stop.count_dropped(1);
            return;
        }
        if self.table.metrics.is_some() {
            self.taken += 1;
            self.stats.taken.store(self.taken, Ordering::Relaxed);
        }
        self.handle(event, 0, watch).await;
    }

    /// A batch from the router. What was handed and not taken (at a stop), the dispatcher
    /// counts, once.
    async fn handle_batch(&mut self, batch: Batch, watch: &Watch) {
        for (event, seq) in batch.into_events() {
            if self.stop.is_requested() {
                return;
            }
            self.taken += 1;
            self.stats.taken.store(self.taken, Ordering::Relaxed);
            if let Some(event) = event {
                self.handle(event, seq, watch).await;
            }
            self.stats.finished.store(self.taken, Ordering::Relaxed);
        }
    }

    /// One event: run now, or held behind the resource's retry (a `DELETED` cancels a create or
    /// update handler's retry and what waited behind it, then runs).
    async fn handle(&mut self, event: Event, seq: u32, watch: &Watch) {
        let deleted = event.r#type == EventType::Deleted;
        let Some(Admission {
            key,
            state,
            created,
            held,
        }) = self.table.admit(&event)
        else {
            return;
        };
        state.seq = seq;
        if created {
            for (index, spec) in (0..=u16::MAX).zip(state.plan.timers.iter()) {
                self.scheduler.schedule_timer(key, index, spec.initial_delay);
            }
        }
        if self.scheduler.holds(key) {
            let cancels = deleted
                && self
                    .scheduler
                    .retry(key)
                    .is_some_and(|retry| retry.event.r#type != EventType::Deleted);
            if !cancels {
                self.scheduler.hold(key, Work::Event(event));
                return;
            }
            if let Some((retry, held)) = self.scheduler.cancel_retry(key) {
                let events = held.iter().filter(|work| work.is_event()).count();
                log_cancelled(key, state, &retry, events);
            }
        }
        // The common case, in the one lookup `admit` made: nothing to settle unless the resource
        // was deleted or a handler is to be retried.
        let ran = run_work(key, state, Work::Event(event), watch, &self.out, held).await;
        if ran.deleted || ran.retry.is_some() {
            let key = key.clone();
            let mut rest = VecDeque::new();
            if !self.settle(&key, ran, &mut rest, watch).await {
                self.run_queue(key, rest, watch).await;
            }
        }
    }

    /// Delayed work came due: a timer runs unless a retry holds the resource (then it waits its
    /// turn), a retry runs and, once it has, what waited behind it.
    async fn fire(&mut self, key: ResourceKey, fired: Fired<Box<PendingRetry>>, watch: &Watch) {
        if !self.table.resources.contains_key(&Lookup(key.lookup())) {
            return;
        }
        // A bucket that moved away takes its timers and retries with it: the new owner runs them.
        if let Some(shard) = &self.table.shard
            && shard.moves()
            && !shard.owns(key.lookup())
        {
            tracing::debug!(target: "memo", name = key.name(), "the resource's bucket is another replica's now: its timer or retry stops here");
            return;
        }
        let work = match fired {
            Fired::Timer(timer) if self.scheduler.holds(&key) => {
                self.scheduler.hold(&key, Work::Timer(timer));
                return;
            }
            Fired::Timer(timer) => Work::Timer(timer),
            Fired::Retry(retry) => Work::Retry(retry),
        };
        self.run_queue(key, VecDeque::from([work]), watch).await;
    }

    /// Runs a resource's `queue` in order, until a handler is to be retried (the rest then waits
    /// behind the retry) or the resource is deleted (the rest is a new incarnation's).
    async fn run_queue(&mut self, key: ResourceKey, mut queue: VecDeque<Work>, watch: &Watch) {
        while let Some(work) = queue.pop_front() {
            if self.stop.is_requested() {
                queue.push_front(work);
                self.drop_work(queue);
                return;
            }
            let Some(state) = self.table.resources.get_mut(&Lookup(key.lookup())) else {
                return;
            };
            let timer = match work {
                Work::Timer(timer) => Some(timer),
                _ => None,
            };
            let held = self.table.shard.as_ref().and_then(|shard| shard.held(key.lookup()));
            // What waited behind a retry, when the retry ran long: the bucket may have moved meanwhile.
            if held.is_none() && self.table.shard.as_ref().is_some_and(Sharding::moves) {
                tracing::debug!(target: "memo", name = key.name(), "the resource's bucket is another replica's now: what waited for it stops here");
                return;
            }
            let ran = run_work(&key, state, work, watch, &self.out, held).await;
            if let Some(timer) = timer {
                let interval = state.plan.timers[usize::from(timer)].interval;
                self.scheduler.schedule_timer(&key, timer, interval);
            }
            if self.settle(&key, ran, &mut queue, watch).await {
                return;
            }
        }
    }

    /// What one unit of work came to, for the resource's next: returns whether its queue ends
    /// here. After a deletion the memo is dropped and what came after the `DELETED` starts a new
    /// incarnation; a handler to retry holds the rest of the queue behind it; otherwise what was
    /// held behind a retry that has now run comes next.
    async fn settle(&mut self, key: &ResourceKey, ran: Ran, queue: &mut VecDeque<Work>, watch: &Watch) -> bool {
        if ran.deleted {
            let seq = self
                .table
                .resources
                .remove(&Lookup(key.lookup()))
                .map_or(0, |state| state.seq);
            let (_, held) = self.scheduler.forget(key);
            let later: Vec<Work> = queue.drain(..).chain(held).filter(Work::is_event).collect();
            if later.is_empty()
                && let Some(forgotten) = &self.forgotten
            {
                // The router may let another lane have the key, unless more of its events
                // are on their way here; gone with the router at the end.
                let _ = forgotten.send((key.lookup().into(), seq));
            }
            for work in later {
                if let Work::Event(event) = work {
                    // A new incarnation: admitted afresh, with a fresh memo (and the number of
                    // the latest event this lane has of it).
                    Box::pin(self.handle(event, seq, watch)).await;
                }
            }
            return true;
        }
        if let Some(retry) = ran.retry {
            if retry.event.r#type != EventType::Deleted
                && let Some(deletion) = queue.iter().position(Work::is_deleted_event)
            {
                // The resource is gone already: the retry and what waits before the deletion
                // are moot.
                let events = queue.drain(..deletion).filter(Work::is_event).count();
                if let Some(state) = self.table.resources.get(&Lookup(key.lookup())) {
                    log_cancelled(key, state, &retry, events);
                }
                return false;
            }
            let delay = retry.delay;
            if self.scheduler.schedule_retry(key, retry, delay).is_ok() {
                for work in queue.drain(..) {
                    self.scheduler.hold(key, work);
                }
                return true;
            }
            // No more delayed work is accepted: what waits runs now.
            retry::log_dropped(1, "stopping");
            return false;
        }
        if queue.is_empty() {
            *queue = self.scheduler.release(key);
        }
        false
    }

    /// The inbox ended: no more delayed work; scheduled retries are dropped (logged with `why`)
    /// and what waited behind them runs.
    async fn finish(&mut self, why: &str, watch: &Watch) {
        let released = self.scheduler.stop();
        retry::log_dropped(released.retries_dropped, why);
        for (key, held) in released.held {
            self.run_queue(key, held, watch).await;
        }
    }

    /// A stop: scheduled retries are dropped, and the events held behind them are counted as
    /// dropped (what was handed to the lane and not taken, the dispatcher counts).
    fn drop_the_rest(&mut self) {
        let released = self.scheduler.stop();
        retry::log_dropped(released.retries_dropped, "stopping");
        for (_, held) in released.held {
            self.drop_work(held);
        }
    }

    fn drop_work(&self, work: impl IntoIterator<Item = Work>) {
        let mut events = 0;
        for work in work {
            match work {
                Work::Event(_) => events += 1,
                Work::Retry(_) => retry::log_dropped(1, "stopping"),
                Work::Timer(_) => {}
            }
        }
        self.stop.count_dropped(events);
    }

    fn update_stats(&self) {
        if self.table.metrics.is_some() {
            let stats = &self.stats;
            stats.resources.store(self.table.resources.len(), Ordering::Relaxed);
            stats.held.store(self.scheduler.held(), Ordering::Relaxed);
            stats
                .retries
                .store(self.scheduler.retries_scheduled(), Ordering::Relaxed);
        }
    }
}
