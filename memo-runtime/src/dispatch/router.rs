//! With several lanes: the task that reads the source and hands each event to the lane of its
//! resource, in batches.

use super::batch::Batch;
use super::lane::LaneStats;
use super::read_ahead::ReadAhead;
use crate::api::error::Result;
use crate::api::event::Event;
use crate::api::resource::{Admitted, known_uid};
use crate::api::shard::Sharding;
use crate::exec::stop::Stop;
use crate::observe::metrics::Metrics;
use crate::plan::catalog::Catalog;
use crate::source::document::{self, Item};
use crate::source::{EventSource, Taken};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// How many events the router hands a lane at once, at most.
pub(super) const BATCH: usize = 256;

/// Where a resource's events go, and the number of the last one sent there.
pub(super) struct Assigned {
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

/// What the router knows of an event's resource before it places the event.
pub(super) enum Route {
    /// An assigned resource: this lane, as this event of it.
    Lane(usize, u32),
    /// Another shard's resource.
    Ignored,
    /// Not assigned yet, or no uid: [`Router::place`] reads the rest of its identity.
    Unknown,
}

/// Hands each event to the lane of its resource. A resource seen for the first time goes to the
/// lane with the least work in hand, and stays there until that lane forgets it with no more of
/// its events on their way: a lane stuck in a blocking handler gets no new resources.
pub(super) struct Router<'a> {
    lanes: Vec<mpsc::Sender<Batch>>,
    pub(super) batches: Vec<Batch>,
    pub(super) assigned: hashbrown::HashMap<Box<str>, Assigned, ahash::RandomState>,
    forgotten: mpsc::UnboundedReceiver<(Box<str>, u32)>,
    /// The same checks as the lanes', so that only resources a lane keeps are assigned.
    catalog: Catalog,
    shard: Option<Sharding>,
    metrics: Option<Metrics>,
    stats: &'a [Arc<LaneStats>],
    /// Where the search for the least busy lane starts, turning, so that idle lanes share.
    next_lane: usize,
    lookup_buffer: String,
    /// The events taken from the source at once, and what is known of each: kept between bursts
    /// for their room.
    pub(super) burst: Vec<Event>,
    pub(super) routes: Vec<Route>,
    read_ahead: ReadAhead,
}

impl<'a> Router<'a> {
    pub(super) fn new(
        lanes: Vec<mpsc::Sender<Batch>>,
        forgotten: mpsc::UnboundedReceiver<(Box<str>, u32)>,
        catalog: Catalog,
        shard: Option<Sharding>,
        metrics: Option<Metrics>,
        stats: &'a [Arc<LaneStats>],
    ) -> Self {
        Router {
            batches: lanes.iter().map(|_| Batch::default()).collect(),
            lanes,
            assigned: hashbrown::HashMap::default(),
            forgotten,
            catalog,
            shard,
            metrics,
            stats,
            next_lane: 0,
            lookup_buffer: String::new(),
            burst: Vec::new(),
            routes: Vec::new(),
            read_ahead: ReadAhead::default(),
        }
    }

    /// Reads the source until it ends, fails, or a stop is requested; closes the lanes' inboxes.
    pub(super) async fn run(mut self, source: &mut EventSource, stop: &Stop) -> Result<()> {
        let requested = stop.requested();
        tokio::pin!(requested);
        let outcome = loop {
            if stop.is_requested() {
                break Ok(());
            }
            tokio::select! {
                biased;
                Some((lookup, seq)) = self.forgotten.recv() => self.forget(&lookup, seq),
                taken = source.next_taken_or_failure() => match taken {
                    Ok(Some(taken)) => {
                        // Take what else is ready first, then hand it all over: a burst wakes
                        // each lane once.
                        self.take(taken);
                        let mut count = 1;
                        while count < BATCH * self.lanes.len() && !stop.is_requested() {
                            let Some(taken) = source.try_next_taken() else { break };
                            self.take(taken);
                            count += 1;
                        }
                        self.place_burst();
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
            let unsent: usize = self.batches.iter().map(Batch::len).sum();
            stop.count_dropped(unsent);
        }
        outcome
    }

    /// An event joins the burst; a document is placed at once, after the burst before it.
    fn take(&mut self, taken: Taken<'_>) {
        match taken {
            Taken::Event(event) => self.burst.push(event),
            Taken::Document { text, line, column } => {
                self.place_burst();
                self.place_document(text, line, column);
            }
        }
    }

    /// Places a document of a stream. One of a resource already assigned goes to its lane as it
    /// was framed, only its uid read here; the lane parses it. Any other is parsed here, and
    /// placed as an event, or logged if it is none.
    pub(super) fn place_document(&mut self, text: &[u8], line: usize, column: usize) {
        if let Some(uid) = document::routable_uid(text)
            && let Some(assigned) = self.assigned.get_mut(&*uid)
        {
            if self.shard.as_ref().is_some_and(|shard| !shard.owns(&uid)) {
                tracing::trace!(target: "memo", uid = &*uid, "another shard's resource; event ignored");
                return;
            }
            let (lane, seq) = assigned.next();
            self.batches[lane].push_document(text, line, column, seq);
            return;
        }
        match document::parse(text, line, column) {
            Item::Event(event) => self.place(event),
            Item::Skipped(skipped) => skipped.log(),
        }
    }

    /// Places every event of the burst, in order.
    pub(super) fn place_burst(&mut self) {
        if self.burst.is_empty() {
            return;
        }
        let mut burst = std::mem::take(&mut self.burst);
        let mut routes = std::mem::take(&mut self.routes);
        self.route_known(&burst, &mut routes);
        for (event, route) in burst.drain(..).zip(routes.drain(..)) {
            match route {
                Route::Lane(lane, seq) => self.batches[lane].push(event, seq),
                Route::Ignored => {
                    tracing::trace!(target: "memo", uid = event.uid(), "another shard's resource; event ignored");
                }
                Route::Unknown => self.place(event),
            }
        }
        self.burst = burst;
        self.routes = routes;
    }

    /// Finds the lane of every event of `burst` whose resource is assigned, their uids read
    /// together.
    fn route_known(&mut self, burst: &[Event], routes: &mut Vec<Route>) {
        self.read_ahead.uids(burst.iter(), |uid| {
            // As `place` finds it: a resource assigned is found by its uid alone, as its lane
            // finds it; its kind and namespace were checked when it was assigned.
            let route = match uid.and_then(|uid| self.assigned.get_mut(uid).map(|assigned| (uid, assigned))) {
                None => Route::Unknown,
                Some((uid, _)) if self.shard.as_ref().is_some_and(|shard| !shard.owns(uid)) => Route::Ignored,
                Some((_, assigned)) => {
                    let (lane, seq) = assigned.next();
                    Route::Lane(lane, seq)
                }
            };
            routes.push(route);
        });
    }

    /// Places one event: a resource already assigned goes to its lane, a new one to the least
    /// busy lane; an event no lane would keep is not placed (logged), and one a lane rejects,
    /// naming what is wrong, goes to the first.
    pub(super) fn place(&mut self, event: Event) {
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
            self.batches[lane].push(event, seq);
            return;
        }
        let admitted = match Admitted::read(&event.object) {
            Ok(admitted) => admitted,
            Err(_) => {
                // A lane rejects it, naming what is wrong.
                self.batches[0].push(event, 0);
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
                self.batches[0].push(event, 0);
                return;
            }
            None => {
                let lane = least_busy(self.stats, self.next_lane);
                self.next_lane = (lane + 1) % self.lanes.len();
                self.assigned.insert(lookup.into(), Assigned { lane, seq: 1 });
                (lane, 1)
            }
        };
        self.batches[lane].push(event, seq);
    }

    /// A lane forgot a resource after event `seq`: unless later ones went there since, its next
    /// event may go anywhere.
    pub(super) fn forget(&mut self, lookup: &str, seq: u32) {
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
pub(super) fn least_busy(stats: &[Arc<LaneStats>], start: usize) -> usize {
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
