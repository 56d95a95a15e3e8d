//! A run of an operator, phase by phase: the checks, the startup handlers, the events until the
//! source ends or a signal stops it (bounded by the shutdown timeout), and the cleanup handlers.

use crate::api::error::{Error, Result};
use crate::api::logger::Logger;
use crate::api::shard::{Owned, Shard, Sharding};
use crate::contract::context::Env;
use crate::contract::registry::{self, MemoType, Registration, Trigger};
use crate::dispatch::Dispatcher;
use crate::exec::invoke;
use crate::exec::progress::Progress;
use crate::exec::stop::{Stop, Supervised, humanize};
use crate::exec::writeback::Writeback;
use crate::observe::health::Health;
use crate::observe::in_flight::{InFlight, Watch};
use crate::observe::liveness::Endpoint;
use crate::observe::metrics::Metrics;
use crate::operator::Operator;
use crate::operator::{ProgressIn, leases};
use crate::plan::bound::Bound;
use crate::plan::catalog::Catalog;
use crate::plan::validate::validate;
use crate::shared::SharedMemory;
use crate::source::EventSource;
use crate::store::leaser::{Leaser, StoreLeaser};
use crate::store::{AnnotationsProgress, ProgressStore, SharedProgress};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl<M: Clone + Send + Sync + 'static> Operator<M> {
    /// Runs the operator to completion.
    ///
    /// First checks the registered handlers (memo types, duplicate ids) and fails with
    /// [`Error::Startup`] before handling anything if they are wrong. Then runs the startup
    /// handlers on the operator memo — if one fails, no event is handled and `run` fails with
    /// [`Error::StartupFailed`] — handles events until the source ends or a signal arrives,
    /// finishes what runs (bounded by [`shutdown_timeout`](Operator::shutdown_timeout) when a
    /// signal asked), stops timers, drops the resource memos, and runs the cleanup handlers.
    ///
    /// Returns `Ok` after a stop by the end of the source or by a signal; the source's error if
    /// it failed (after cleanup); [`Error::Forced`] if a second signal cut the stop short.
    ///
    /// On a multi-threaded runtime, handlers run on threads of their own (one per worker), so a
    /// blocking sync handler holds up one worker and never the runtime's timers, signals or
    /// source.
    pub async fn run(self) -> Result<()> {
        let handlers = registry::registered();
        let watches_cluster = self.source.as_ref().and_then(EventSource::cluster).is_some();
        // The source's cluster first: it also knows where each kind is written.
        let cluster = self
            .source
            .as_ref()
            .and_then(EventSource::cluster)
            .or_else(|| self.cluster.clone());
        let problems = validate(
            &handlers,
            &registry::registered_preparers(),
            MemoType::of::<M>(),
            cluster.is_some(),
        );
        if !problems.is_empty() {
            for problem in &problems {
                tracing::error!(target: "memo", code = problem.code(), "{}", problem.message());
            }
            return Err(Error::Startup(problems));
        }
        let Operator {
            memo,
            memory,
            workers,
            source,
            handle_signals,
            shutdown_timeout,
            shard,
            shard_auto,
            lease_namespace,
            lease_duration,
            liveness,
            metrics,
            post_events,
            cluster: _,
            progress: progress_settings,
        } = self;
        if let Some(cluster) = &cluster {
            cluster.report_as(memory.bot());
        }
        let static_shard = shard.map(|(index, count)| Shard::new(index, count)).transpose()?;
        if let Some(shard) = static_shard {
            tracing::info!(target: "memo", "handling shard {shard}: the resources whose key hashes to {} modulo {}", shard.index(), shard.count());
        }
        let owned = shard_auto.then(|| Arc::new(Owned::default()));
        let shard = match (&owned, static_shard) {
            (Some(owned), _) => Some(Sharding::Leased(Arc::clone(owned))),
            (None, shard) => shard.map(Sharding::Static),
        };
        // Without a source the operator runs until a signal: its placeholder channel stays open.
        let mut idle_sender = None;
        let source = match source {
            Some(source) => source,
            None if handle_signals => {
                let (sender, source) = crate::source::channel(1);
                idle_sender = Some(sender);
                source
            }
            None => {
                return Err(Error::custom(
                    "the operator has no source: call `Operator::source` before `run`",
                ));
            }
        };
        // One shard of one is everything: nothing to drop, no reason to read a uid twice.
        if let Some(sharding) = shard
            .as_ref()
            .filter(|sharding| !matches!(sharding, Sharding::Static(whole) if whole.count() == 1))
        {
            source.shard(sharding);
        }
        let health = Health::default();
        let metrics = liveness.is_some().then_some(metrics);
        // Stops with this run, however it ends.
        let _endpoint = match (&liveness, &metrics) {
            (Some(address), Some(metrics)) => {
                memory.count_operations(metrics);
                // Not on the runtime's thread: it may take a fifth of a second.
                if tokio::task::spawn_blocking(crate::observe::metrics::calibrate_clock)
                    .await
                    .is_err()
                {
                    tracing::warn!(target: "memo", "calibrating the clock of the handler durations failed; the first call calibrates it");
                }
                Some(Endpoint::start(address, health.clone(), metrics.clone()).await?)
            }
            _ => None,
        };
        let stop = Stop::default();
        // Ends with this run, however it ends (a caller may drop the future too).
        let _signals =
            handle_signals.then(|| AbortOnDrop(tokio::spawn(stop.clone().listen_for_signals(shutdown_timeout))));
        let leaser = if shard_auto {
            Some(leaser_of(
                lease_namespace.as_deref(),
                lease_duration,
                cluster.as_ref(),
                &memory,
            )?)
        } else {
            None
        };
        let out = {
            let own: Arc<str> = format!("{}/", progress_settings.prefix.trim_end_matches('/')).into();
            let store: Option<Arc<dyn ProgressStore>> = match (&progress_settings.custom, progress_settings.place) {
                (Some(custom), _) => Some(Arc::clone(custom)),
                (None, ProgressIn::Shared) => Some(Arc::new(SharedProgress::new(memory.store().clone(), memory.bot()))),
                // On the objects themselves: only a cluster has objects to write to.
                (None, ProgressIn::Annotations) if watches_cluster => {
                    Some(Arc::new(AnnotationsProgress::new(&progress_settings.prefix)))
                }
                (None, ProgressIn::Annotations) => None,
            };
            let progress =
                store.map(|store| Progress::new(store, &progress_settings.finalizer, &progress_settings.prefix));
            let own = progress
                .as_ref()
                .map_or(own, |progress| Arc::clone(&progress.own_annotations));
            Writeback::new(cluster, post_events).recording(progress, own)
        };
        let phases = Phases {
            handlers: handlers.into(),
            memory,
            stop,
            grace: shutdown_timeout,
            shard,
            health,
            metrics,
            out,
        };
        let keeper = owned.zip(leaser).map(|(owned, leaser)| {
            leases::Keeper::start(
                leaser,
                phases.memory.bot(),
                owned,
                phases.metrics.clone(),
                phases.health.clone(),
                phases.out.shared_cluster(),
            )
        });
        let result = phases.run(memo, source, workers).await;
        // After the last handler: the other replicas take the buckets over at once.
        if let Some(keeper) = keeper {
            keeper.stop().await;
        }
        drop(idle_sender);
        result
    }
}

/// Where `--shard auto` keeps its leases: Kubernetes Leases in `namespace` when one is given
/// (through the operator's cluster), the shared store otherwise.
fn leaser_of(
    namespace: Option<&str>,
    lease: Option<Duration>,
    cluster: Option<&Arc<dyn crate::contract::cluster::Cluster>>,
    memory: &SharedMemory,
) -> Result<Arc<dyn Leaser>> {
    match (namespace, cluster) {
        (None, _) => {
            let _ = lease;
            Ok(Arc::new(StoreLeaser::new(memory.store().to_shared(), memory.bot())))
        }
        #[cfg(feature = "kube")]
        (Some(namespace), Some(cluster)) => Ok(Arc::new(crate::source::KubeLeaser::new(
            cluster.client().clone(),
            namespace,
            memory.bot(),
            lease.unwrap_or(crate::store::DEFAULT_LEASE),
        ))),
        (Some(namespace), _) => Err(Error::custom(format!(
            "`--shard auto` with Leases in namespace {namespace} needs the operator to run against a cluster \
             (without `--source`) or a client (`Operator::client`)"
        ))),
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The steps of one run: startup, events, cleanup, each supervised by the stop.
struct Phases {
    handlers: Arc<[&'static Registration]>,
    memory: SharedMemory,
    stop: Stop,
    grace: Duration,
    shard: Option<Sharding>,
    health: Health,
    /// `None` unless the operator serves metrics.
    metrics: Option<Metrics>,
    /// Where handlers' patches and outcome Events go.
    out: Writeback,
}

impl Phases {
    async fn run<M: Clone + Send + Sync + 'static>(&self, memo: M, source: EventSource, workers: usize) -> Result<()> {
        let stop = &self.stop;
        let memo = match self.lifecycle("startup", Trigger::is_startup, memo, false).await? {
            Lifecycle::Done(memo) => memo,
            Lifecycle::Failed(failure) => {
                tracing::error!(target: "memo", "stopped: {failure}; no event was handled and cleanup handlers do not run");
                return Err(failure);
            }
            Lifecycle::Abandoned => {
                tracing::info!(target: "memo", "stopped during startup: no event was handled");
                return Ok(());
            }
        };
        let outcome = if stop.is_requested() {
            Ok(())
        } else {
            self.events(memo.clone(), source, workers).await?
        };
        let why = match (&outcome, stop.signal()) {
            (Err(err), _) => format!("the source failed: {err}"),
            (Ok(()), Some(signal)) => format!("{signal} received"),
            (Ok(()), None) => "the source ended".to_owned(),
        };
        match self.lifecycle("cleanup", Trigger::is_cleanup, memo, true).await? {
            Lifecycle::Done(_) | Lifecycle::Failed(_) | Lifecycle::Abandoned => {}
        }
        match &outcome {
            Ok(()) => tracing::info!(target: "memo", "stopped: {why}"),
            Err(_) => tracing::error!(target: "memo", "stopped: {why}"),
        }
        outcome
    }

    /// Handles events until the source ends or a stop is requested, bounded by the grace period
    /// once a stop is requested. The outer error is a forced stop; the inner one the source's.
    async fn events<M: Clone + Send + Sync + 'static>(
        &self,
        memo: M,
        source: EventSource,
        workers: usize,
    ) -> Result<Result<()>> {
        let stop = &self.stop;
        let in_flight = InFlight::default();
        let catalog = Catalog::new(&self.handlers, self.memory.clone(), self.metrics.clone());
        let dispatcher = Dispatcher::new(
            memo,
            catalog,
            stop.clone(),
            self.shard.clone(),
            self.metrics.clone(),
            self.out.clone(),
        );
        self.health.running(source.connections());
        let dispatching = {
            let (stop, in_flight) = (stop.clone(), in_flight.clone());
            crate::exec::dedicated::task(async move {
                tokio::select! {
                    biased;
                    () = stop.abandoned() => Ok(()),
                    outcome = dispatcher.run(source, workers, in_flight) => outcome,
                }
            })
        };
        // What runs is named before it is cancelled: a cancelled handler no longer says so.
        let mut abandoned = 0;
        let abandon = || {
            abandoned = in_flight.report_abandoned();
            stop.abandon();
        };
        let outcome = match stop.supervise(dispatching, self.grace, false, abandon).await {
            Supervised::Finished(outcome) => outcome,
            Supervised::Abandoned => {
                tracing::warn!(
                    target: "memo",
                    "the shutdown timeout ({}) ran out: {abandoned} handler(s) abandoned",
                    humanize(self.grace)
                );
                Ok(())
            }
            Supervised::Forced(signal) => return Err(Error::Forced(signal)),
            Supervised::Lost => Err(Error::custom("the event loop's thread ended without an answer")),
        };
        self.health.stopped();
        let dropped = stop.dropped_events();
        if dropped > 0 {
            tracing::warn!(target: "memo", dropped, "{dropped} event(s) read but not started were dropped by the stop");
        }
        Ok(outcome)
    }

    /// Runs the startup or cleanup handlers on the operator memo, in registry order, on a
    /// thread of their own; bounded by the grace period from the start (`bounded_now`) or from
    /// a stop request. The error is a forced stop.
    async fn lifecycle<M: Send + Sync + 'static>(
        &self,
        phase: &'static str,
        wanted: fn(&Trigger) -> bool,
        mut memo: M,
        bounded_now: bool,
    ) -> Result<Lifecycle<M>> {
        let selected: Vec<_> = self.handlers.iter().copied().filter(|h| wanted(&h.trigger)).collect();
        if selected.is_empty() {
            return Ok(Lifecycle::Done(memo));
        }
        let cancel = CancellationToken::new();
        let in_flight = InFlight::default();
        let work = {
            let (memory, cancel, watch) = (self.memory.clone(), cancel.clone(), in_flight.watch());
            let (metrics, out) = (self.metrics.clone(), self.out.clone());
            crate::exec::dedicated::spawn(format!("memo-{phase}"), async move {
                let failed = tokio::select! {
                    biased;
                    () = cancel.cancelled() => None,
                    failed = run_lifecycle(&selected, &memory, metrics.as_ref(), &mut memo, &watch, &out) => failed,
                };
                (memo, failed)
            })
        };
        let abandon = || {
            in_flight.report_abandoned();
            cancel.cancel();
        };
        match self.stop.supervise(work, self.grace, bounded_now, abandon).await {
            Supervised::Finished((memo, None)) => Ok(Lifecycle::Done(memo)),
            Supervised::Finished((_, Some(handler))) if phase == "startup" => {
                Ok(Lifecycle::Failed(Error::StartupFailed {
                    handler: handler.id.to_owned(),
                    location: handler.location().to_string(),
                }))
            }
            Supervised::Finished((memo, Some(_))) => Ok(Lifecycle::Done(memo)),
            Supervised::Abandoned => {
                tracing::warn!(target: "memo", "the {phase} handlers did not finish within the shutdown timeout ({})", humanize(self.grace));
                Ok(Lifecycle::Abandoned)
            }
            Supervised::Forced(signal) => Err(Error::Forced(signal)),
            Supervised::Lost => {
                tracing::error!(target: "memo", "the {phase} handlers' thread ended without an answer");
                Ok(Lifecycle::Abandoned)
            }
        }
    }
}

enum Lifecycle<M> {
    Done(M),
    /// A startup handler failed.
    Failed(Error),
    Abandoned,
}

/// Runs lifecycle handlers in order; returns the first startup handler that failed (cleanup
/// goes on past failures: each cleans up its own part).
async fn run_lifecycle<M: Send + Sync + 'static>(
    handlers: &[&'static Registration],
    memory: &SharedMemory,
    metrics: Option<&Metrics>,
    memo: &mut M,
    watch: &Watch,
    out: &Writeback,
) -> Option<&'static Registration> {
    let logger = once_cell::race::OnceBox::with_value(Box::new(Logger::operator()));
    let env = Env::new(None, None, None, &logger, watch).on(out.cluster());
    for &handler in handlers {
        // No resource, no lease: always started.
        if let Ok(Err(err)) = invoke::call(&Bound::new(handler, memory, metrics), memo, &env, None, None, 0).await {
            invoke::report(handler, &env, &err);
            if handler.trigger.is_startup() {
                return Some(handler);
            }
        }
    }
    None
}
