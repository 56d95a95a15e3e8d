//! The event engine: routes events to resources, keeps each resource's memo, runs handlers one
//! resource at a time and up to `workers` resources at once, and fires timers and retries.
//!
//! One engine, whatever the number of workers: the resources are split into lanes by the hash of
//! their key ([`lane`]), each lane owning its resources' states and delayed work
//! ([`scheduler`]) and running their handlers in order ([`work`]). With one worker the only lane
//! reads the source itself; with more, each lane runs on a thread of its own and this module's
//! router hands it its events in batches. Every decision about a resource's work is made in its
//! lane, by the same code in both cases.

mod choose;
mod lane;
mod scheduler;
#[cfg(test)]
mod tests;
mod work;

use crate::api::error::Result;
use crate::api::event::Event;
use crate::api::resource::{Admitted, known_uid};
use crate::api::shard::Sharding;
use crate::exec::stop::Stop;
use crate::exec::writeback::Writeback;
use crate::observe::in_flight::InFlight;
use crate::observe::metrics::Metrics;
use crate::plan::catalog::Catalog;
use crate::source::EventSource;
use lane::{Inbox, Lane, LaneStats, Numbered};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// How many events the router hands a lane at once, at most.
const BATCH: usize = 256;

/// How many batches may wait for a lane: past it, the router waits for that lane, so that a slow
/// lane does not make the router read (and hold) the whole source.
const BACKLOG: usize = 4;

pub(crate) struct Dispatcher<M> {
    operator_memo: M,
    catalog: Catalog,
    stop: Stop,
    /// The resources this replica handles; `None`: all.
    shard: Option<Sharding>,
    /// `None` unless the operator serves metrics.
    metrics: Option<Metrics>,
    out: Writeback,
}

impl<M: Clone + Send + Sync + 'static> Dispatcher<M> {
    pub(crate) fn new(
        operator_memo: M,
        catalog: Catalog,
        stop: Stop,
        shard: Option<Sharding>,
        metrics: Option<Metrics>,
        out: Writeback,
    ) -> Self {
        Dispatcher {
            operator_memo,
            catalog,
            stop,
            shard,
            metrics,
            out,
        }
    }

    fn lane(&self, catalog: Catalog, stats: Arc<LaneStats>) -> Lane<M> {
        Lane::new(
            self.operator_memo.clone(),
            catalog,
            self.stop.clone(),
            self.shard.clone(),
            self.metrics.clone(),
            stats,
            self.out.clone(),
        )
    }

    /// Runs until the source ends (then drains what is queued) or a stop is requested (then
    /// starts nothing new and waits for what runs), and drops every resource memo. Fails with
    /// the source's failure, after the same steps. Retries scheduled for later are dropped, not
    /// waited for.
    pub(crate) async fn run(self, source: EventSource, workers: usize, in_flight: InFlight) -> Result<()> {
        let lanes = workers.max(1);
        let gauges = Arc::new(Gauges {
            routed: lanes > 1,
            lanes: (0..lanes).map(|_| Arc::default()).collect(),
            unstarted_counted: AtomicBool::new(false),
        });
        if gauges.routed {
            // A stop that abandons the lanes (one stuck in a handler cannot count what waits in
            // its inbox) counts what they were handed and never took.
            let (gauges, stop) = (Arc::clone(&gauges), self.stop.clone());
            in_flight.on_abandon(Box::new(move || gauges.count_unstarted(&stop)));
        }
        if let Some(metrics) = &self.metrics {
            let gauges = Arc::clone(&gauges);
            metrics.collect_with(Some(Box::new(move |metrics| gauges.publish(metrics))));
        }
        let outcome = if lanes == 1 {
            source.parse_on_consumer();
            let lane = self.lane(self.catalog.fresh(), Arc::clone(&gauges.lanes[0]));
            lane.run(Inbox::Source(source), &in_flight.watch()).await
        } else {
            self.run_lanes(source, &gauges, &in_flight).await
        };
        gauges.count_unstarted(&self.stop);
        if let Some(metrics) = &self.metrics {
            // The last figures stay: no resource, nothing queued.
            metrics.collect_with(None);
            gauges.publish(metrics);
        }
        outcome
    }

    /// Several lanes, each on a thread of its own, fed by this task.
    async fn run_lanes(&self, mut source: EventSource, gauges: &Arc<Gauges>, in_flight: &InFlight) -> Result<()> {
        let mut senders = Vec::with_capacity(gauges.lanes.len());
        let mut running = Vec::with_capacity(gauges.lanes.len());
        let (forgotten, forgotten_by_lanes) = mpsc::unbounded_channel();
        for (index, stats) in gauges.lanes.iter().enumerate() {
            let (sender, receiver) = mpsc::channel(BACKLOG);
            let inbox = Inbox::Routed {
                events: receiver,
                forgotten: forgotten.clone(),
            };
            let lane = self.lane(self.catalog.fresh(), Arc::clone(stats));
            let (stop, watch) = (self.stop.clone(), in_flight.watch());
            let work = async move {
                // Past the shutdown deadline, what still runs is cancelled (an async handler) or
                // left behind on this thread (a sync one, which nothing can interrupt).
                tokio::select! {
                    biased;
                    () = stop.abandoned() => Ok(()),
                    outcome = lane.run(inbox, &watch) => outcome,
                }
            };
            running.push(crate::exec::dedicated::spawn(format!("memo-worker-{index}"), work));
            senders.push(sender);
        }
        drop(forgotten);
        let router = Router {
            lanes: senders,
            batches: gauges.lanes.iter().map(|_| Vec::new()).collect(),
            assigned: hashbrown::HashMap::default(),
            forgotten: forgotten_by_lanes,
            catalog: self.catalog.fresh(),
            shard: self.shard.clone(),
            metrics: self.metrics.clone(),
            stats: &gauges.lanes,
            next_lane: 0,
            lookup_buffer: String::new(),
        };
        let outcome = router.run(&mut source, &self.stop).await;
        for lane in running {
            // A lane ends once its inbox is closed and empty (or at a stop); one that is gone
            // has nothing to say.
            let _ = lane.await;
        }
        outcome
    }
}

/// The lanes' figures, for the gauges when the metrics are read, and for the stop.
struct Gauges {
    /// Whether a router hands the lanes their events (with one lane, it reads the source).
    routed: bool,
    lanes: Vec<Arc<LaneStats>>,
    unstarted_counted: AtomicBool,
}

impl Gauges {
    fn publish(&self, metrics: &Metrics) {
        let (mut waiting, mut resources, mut retries) = (0u64, 0, 0);
        for lane in &self.lanes {
            if self.routed {
                let handed = lane.handed.load(Ordering::Relaxed);
                waiting += handed.saturating_sub(lane.taken.load(Ordering::Relaxed));
            }
            waiting += lane.held.load(Ordering::Relaxed) as u64;
            resources += lane.resources.load(Ordering::Relaxed);
            retries += lane.retries.load(Ordering::Relaxed);
        }
        metrics.queue_depth.set(i64::try_from(waiting).unwrap_or(i64::MAX));
        metrics.resources.set(i64::try_from(resources).unwrap_or(i64::MAX));
        metrics
            .retries_scheduled
            .set(i64::try_from(retries).unwrap_or(i64::MAX));
    }

    /// Counts the events handed to lanes and never taken as dropped, once: when the lanes have
    /// ended, or when a stop abandons them (a lane takes nothing more once a stop is requested).
    fn count_unstarted(&self, stop: &Stop) {
        if !self.routed || self.unstarted_counted.swap(true, Ordering::AcqRel) {
            return;
        }
        let unstarted: u64 = self
            .lanes
            .iter()
            .map(|lane| {
                let handed = lane.handed.load(Ordering::Acquire);
                handed.saturating_sub(lane.taken.load(Ordering::Acquire))
            })
            .sum();
        stop.count_dropped(usize::try_from(unstarted).unwrap_or(usize::MAX));
    }
}

/// Where a resource's events go, and the number of the last one sent there.
struct Assigned {
    lane: usize,
    seq: u32,
}

impl Assigned {
    /// Numbers one more event for the lane: its lane, and its number.
    fn next(&mut self) -> (usize, u32) {
        self.seq = self.seq.wrapping_add(1);
        (self.lane, self.seq)
    }
}

/// Hands each event to the lane of its resource. A resource seen for the first time goes to the
/// lane with the least work in hand, and stays there until that lane forgets it with no more of
/// its events on their way: a lane stuck in a blocking handler gets no new resources.
struct Router<'a> {
    lanes: Vec<mpsc::Sender<Vec<Numbered>>>,
    batches: Vec<Vec<Numbered>>,
    assigned: hashbrown::HashMap<Box<str>, Assigned, ahash::RandomState>,
    forgotten: mpsc::UnboundedReceiver<(Box<str>, u32)>,
    /// The same checks as the lanes', so that only resources a lane keeps are assigned.
    catalog: Catalog,
    shard: Option<Sharding>,
    metrics: Option<Metrics>,
    stats: &'a [Arc<LaneStats>],
    /// Where the search for the least busy lane starts, turning, so that idle lanes share.
    next_lane: usize,
    lookup_buffer: String,
}

impl Router<'_> {
    /// Reads the source until it ends, fails, or a stop is requested; closes the lanes' inboxes.
    async fn run(mut self, source: &mut EventSource, stop: &Stop) -> Result<()> {
        let requested = stop.requested();
        tokio::pin!(requested);
        let outcome = loop {
            if stop.is_requested() {
                break Ok(());
            }
            tokio::select! {
                biased;
                Some((lookup, seq)) = self.forgotten.recv() => self.forget(&lookup, seq),
                event = source.next_or_failure() => match event {
                    Ok(Some(event)) => {
                        // Take what else is ready first, then hand it all over: a burst wakes
                        // each lane once.
                        self.place(event);
                        let mut taken = 1;
                        while taken < BATCH * self.lanes.len() && !stop.is_requested() {
                            let Some(event) = source.try_next() else { break };
                            self.place(event);
                            taken += 1;
                        }
                        if !self.hand_over(stop).await {
                            break Ok(());
                        }
                    }
                    Ok(None) => {
                        tracing::info!(target: "memo", "the source ended; finishing the queued events");
                        break Ok(());
                    }
                    Err(err) => break Err(err),
                },
                () = &mut requested => {}
            }
        };
        if stop.is_requested() {
            let unsent: usize = self.batches.iter().map(Vec::len).sum();
            stop.count_dropped(unsent);
        }
        outcome
    }

    fn place(&mut self, event: Event) {
        // A resource already assigned, found by its uid alone, as its lane finds it: its kind and
        // namespace were checked when it was assigned.
        if let Some(uid) = known_uid(&event.object)
            && let Some(assigned) = self.assigned.get_mut(uid)
        {
            if self.shard.as_ref().is_some_and(|shard| !shard.owns(uid)) {
                tracing::trace!(target: "memo", uid, "another shard's resource; event ignored");
                return;
            }
            let (lane, seq) = assigned.next();
            self.batches[lane].push((event, seq));
            return;
        }
        let admitted = match Admitted::read(&event.object) {
            Ok(admitted) => admitted,
            Err(_) => {
                // A lane rejects it, naming what is wrong.
                self.batches[0].push((event, 0));
                return;
            }
        };
        if self.catalog.plan(admitted.kind, admitted.api_version).is_none() {
            if let Some(metrics) = &self.metrics {
                metrics.received_unhandled_kind(event.r#type);
            }
            tracing::trace!(target: "memo", kind = admitted.kind, name = admitted.name, "no handler for this kind; event ignored");
            return;
        }
        let lookup = admitted.lookup(&mut self.lookup_buffer);
        if self.shard.as_ref().is_some_and(|shard| !shard.owns(lookup)) {
            tracing::trace!(target: "memo", kind = admitted.kind, name = admitted.name, "another shard's resource; event ignored");
            return;
        }
        let (lane, seq) = match self.assigned.get_mut(lookup) {
            Some(assigned) => assigned.next(),
            None if admitted.checked_namespace().is_err() => {
                // A lane refuses it, naming the field; nothing to remember.
                self.batches[0].push((event, 0));
                return;
            }
            None => {
                let lane = least_busy(self.stats, self.next_lane);
                self.next_lane = (lane + 1) % self.lanes.len();
                self.assigned.insert(lookup.into(), Assigned { lane, seq: 1 });
                (lane, 1)
            }
        };
        self.batches[lane].push((event, seq));
    }

    /// A lane forgot a resource after event `seq`: unless later ones went there since, its next
    /// event may go anywhere.
    fn forget(&mut self, lookup: &str, seq: u32) {
        if self.assigned.get(lookup).is_some_and(|assigned| assigned.seq == seq) {
            self.assigned.remove(lookup);
        }
    }

    /// Sends every lane its batch; `false` if a stop came first.
    async fn hand_over(&mut self, stop: &Stop) -> bool {
        for ((lane, batch), stats) in self.lanes.iter().zip(self.batches.iter_mut()).zip(self.stats) {
            if batch.is_empty() {
                continue;
            }
            let events = std::mem::take(batch);
            let count = events.len() as u64;
            let sent = match lane.try_send(events) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(events)) => {
                    tokio::select! {
                        biased;
                        sent = lane.send(events) => sent.is_ok(),
                        () = stop.requested() => {
                            stop.count_dropped(count as usize);
                            return false;
                        }
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            };
            if sent {
                // Only this task writes it.
                let handed = stats.handed.load(Ordering::Relaxed);
                stats.handed.store(handed + count, Ordering::Release);
            } else {
                // A lane ends only at a stop or when abandoned.
                stop.count_dropped(count as usize);
            }
        }
        true
    }
}

/// The lane with the least work in hand (handed and not finished), searching from `start`.
fn least_busy(stats: &[Arc<LaneStats>], start: usize) -> usize {
    let lanes = stats.len();
    (0..lanes)
        .map(|offset| (start + offset) % lanes)
        .min_by_key(|&lane| {
            let lane = &stats[lane];
            let handed = lane.handed.load(Ordering::Relaxed);
            handed.saturating_sub(lane.finished.load(Ordering::Relaxed))
        })
        .unwrap_or(0)
}
