//! The event engine: routes events to resources, keeps each resource's memo, runs handlers one
//! resource at a time and up to `workers` resources at once, and fires timers and retries.
//!
//! One engine, whatever the number of workers: the resources are split into lanes by the hash of
//! their key ([`lane`]), each lane owning its resources' states and delayed work
//! ([`scheduler`]) and running their handlers in order ([`work`]). With one worker the only lane
//! reads the source itself; with more, each lane runs on a thread of its own and this module's
//! router hands it its events in batches. Every decision about a resource's work is made in its
//! lane, by the same code in both cases.

mod batch;
mod choose;
mod lane;
mod read_ahead;
mod router;
mod scheduler;
#[cfg(test)]
mod tests;
mod work;

use crate::api::error::Result;
use crate::api::shard::Sharding;
use crate::exec::stop::Stop;
use crate::exec::writeback::Writeback;
use crate::observe::in_flight::InFlight;
use crate::observe::metrics::Metrics;
use crate::plan::catalog::Catalog;
use crate::source::EventSource;
use lane::{Inbox, Lane, LaneStats};
use router::Router;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

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
        source.parse_on_consumer();
        let outcome = if lanes == 1 {
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
        let router = Router::new(
            senders,
            forgotten_by_lanes,
            self.catalog.fresh(),
            self.shard.clone(),
            self.metrics.clone(),
            &gauges.lanes,
        );
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
