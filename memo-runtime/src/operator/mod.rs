//! The operator: validates the registered handlers, runs startup handlers, handles events, and
//! shuts down gracefully.

use crate::api::error::{Error, Result};
use crate::api::logger::Logger;
use crate::api::memo::Memo;
use crate::api::shard::Shard;
use crate::contract::context::Env;
use crate::contract::registry::{self, MemoType, Registration, Trigger};
use crate::dispatch::Dispatcher;
use crate::exec::invoke;
use crate::exec::stop::{Stop, Supervised, humanize};
use crate::observe::health::Health;
use crate::observe::in_flight::{InFlight, Watch};
use crate::observe::liveness::Endpoint;
use crate::observe::metrics::Metrics;
use crate::plan::bound::Bound;
use crate::plan::catalog::Catalog;
use crate::plan::validate::validate;
use crate::shared::SharedMemory;
use crate::shared::preparers::Prepare;
use crate::shared::{DEFAULT_BOT_NAME, Shared};
use crate::source::EventSource;
use crate::store::{InProcessStore, Store, StoreRef};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a stop waits for running handlers by default: a pod's grace period.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the registered handlers over a source of events, owning the memo hierarchy.
///
/// `M` is the memo type: [`Memo`] unless [`Operator::memo`] gives another. Each resource's memo
/// is a `Clone` of the operator memo taken when the resource is first seen.
///
/// ```
/// use memo_runtime::prelude::*;
///
/// #[handler(event = "KopfExample")]
/// fn pinged(memo: &mut Memo) {
///     let n = memo.get::<u64>("counter").copied().unwrap_or(0);
///     memo.insert("counter", n + 1);
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let (events, source) = memo_runtime::source::channel(1024);
///     let operator = Operator::new().workers(2).source(source);
///     let running = tokio::spawn(operator.run());
///     events.send(Event::added(serde_json::json!({
///         "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
///         "metadata": {"name": "ex1", "namespace": "default", "uid": "u-1"}
///     }))).await?;
///     drop(events);            // the source ends
///     running.await??;         // drains, stops timers, runs cleanup
///     Ok(())
/// }
/// ```
#[must_use = "an operator does nothing until `run` is awaited"]
pub struct Operator<M = Memo> {
    memo: M,
    memory: SharedMemory,
    workers: usize,
    source: Option<EventSource>,
    handle_signals: bool,
    shutdown_timeout: Duration,
    shard: Option<(u64, u64)>,
    liveness: Option<String>,
    metrics: Metrics,
}

impl Operator<Memo> {
    /// An operator with an empty [`Memo`], as many workers as the machine has cores, and no
    /// source yet.
    pub fn new() -> Self {
        Operator {
            memo: Memo::new(),
            memory: SharedMemory::new(
                registry::registered_preparers()
                    .into_iter()
                    .map(|preparer| preparer as &'static dyn Prepare)
                    .collect(),
                StoreRef::InProcess(InProcessStore::new()),
                DEFAULT_BOT_NAME.into(),
            ),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            source: None,
            handle_signals: true,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            shard: None,
            liveness: None,
            metrics: Metrics::default(),
        }
    }
}

impl Default for Operator<Memo> {
    fn default() -> Self {
        Operator::new()
    }
}

impl<M> std::fmt::Debug for Operator<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("memo_type", &std::any::type_name::<M>())
            .field("name", self.memory.bot())
            .field("store", self.memory.store())
            .field("workers", &self.workers)
            .field("source", &self.source)
            .field("handle_signals", &self.handle_signals)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("shard", &self.shard)
            .field("liveness", &self.liveness)
            .finish()
    }
}

impl<M: Clone + Send + Sync + 'static> Operator<M> {
    /// Sets the operator memo: what startup handlers fill and every resource memo is cloned from.
    ///
    /// Any `Clone + Send + Sync + 'static` type can be the memo; its `Clone` is the shallow copy
    /// a resource gets. Handlers then ask for `&N` or `&mut N`.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    /// use std::sync::{Arc, Mutex};
    ///
    /// // One global memo: every clone shares the same state.
    /// #[derive(Clone, Default)]
    /// struct Context(Arc<Mutex<Vec<String>>>);
    ///
    /// let operator: Operator<Context> = Operator::new().memo(Context::default());
    /// # drop(operator);
    /// ```
    pub fn memo<N: Clone + Send + Sync + 'static>(self, memo: N) -> Operator<N> {
        Operator {
            memo,
            memory: self.memory,
            workers: self.workers,
            source: self.source,
            handle_signals: self.handle_signals,
            shutdown_timeout: self.shutdown_timeout,
            shard: self.shard,
            liveness: self.liveness,
            metrics: self.metrics,
        }
    }

    /// The bot's name (default [`DEFAULT_BOT_NAME`](crate::DEFAULT_BOT_NAME)): its identity in the
    /// [store](Operator::store). Its shared memories, their keys, locks and preparation live under
    /// it, so two bots with different names never see each other's state in one store, and the
    /// replicas of one bot (same name, same store) share theirs.
    ///
    /// Set it before taking [`Operator::shared`] handles: they belong to the name they were taken
    /// under.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// let operator = Operator::new().name("message-counter");
    /// assert_eq!(operator.shared().bot(), "message-counter");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        let name: String = name.into();
        self.memory = self.memory.with(self.memory.store().clone(), name.into());
        self
    }

    /// Where shared memory lives (default: an [`InProcessStore`] of this operator's own). Give a
    /// [`RedisStore`](crate::store) (feature `redis`) to share it between processes and machines,
    /// or any other [`Store`].
    ///
    /// Set it before taking [`Operator::shared`] handles: they belong to the store they were taken
    /// from.
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # async fn start() -> memo_runtime::Result<()> {
    /// use memo_runtime::prelude::*;
    /// use memo_runtime::store::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// let operator = Operator::new().name("message-counter").store(store);
    /// # drop(operator);
    /// # Ok(())
    /// # }
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.memory = self.memory.with(StoreRef::of(store), self.memory.bot().clone());
        self
    }

    /// The bot-level shared memory that handlers without a `component` get.
    ///
    /// The handle reads and writes the same memory as the handlers, from embedding code or
    /// tests. It does not run the preparers: they run when the first handler needs the memory.
    pub fn shared(&self) -> Shared {
        self.memory.space(None)
    }

    /// The shared memory of one component (handlers with `component = "NAME"`). Same caveat as
    /// [`Operator::shared`].
    pub fn component_shared(&self, component: &str) -> Shared {
        self.memory.space(Some(component))
    }

    /// How many handler invocations may run at once (at least 1). Events of one resource always
    /// run one at a time and in order; different resources run concurrently.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Where events come from: [`source::channel`](crate::source::channel) or
    /// [`source::json_stream`](crate::source::json_stream). The operator stops when it ends.
    pub fn source(mut self, source: EventSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Whether SIGINT and SIGTERM stop the operator gracefully (default: yes). A second signal
    /// during a stop forces it at once: [`run`](Operator::run) returns [`Error::Forced`].
    pub fn handle_signals(mut self, handle_signals: bool) -> Self {
        self.handle_signals = handle_signals;
        self
    }

    /// How long a stop waits for running handlers (default: 30 s, a pod's grace period).
    ///
    /// On a stop by signal, no new event starts; handlers already running get this long to
    /// finish, then they are abandoned — async ones cancelled, sync ones left behind on their
    /// thread — each logged with handler and resource. Events read but not started are dropped
    /// and counted in one log line. Cleanup handlers then get the same time of their own.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    /// use std::time::Duration;
    ///
    /// let operator = Operator::new().shutdown_timeout(Duration::from_secs(10));
    /// # drop(operator);
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Makes this operator replica `index` of `count`: it handles only the resources whose key
    /// has [`stable_hash(key) % count == index`](crate::shard::stable_hash) and skips the others'
    /// events before any memo is made. The key is the uid, or without one the kind, group,
    /// namespace and name (see [`Shard`](crate::shard::Shard)).
    ///
    /// `count` replicas reading the same source handle every event exactly once between them,
    /// each resource's events in order in one replica; with a shared store (Redis) they share
    /// their `shared` memory. An index not below the count fails [`run`](Operator::run).
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// let replica = Operator::new().shard(1, 3); // the second of three replicas
    /// # drop(replica);
    /// ```
    pub fn shard(mut self, index: u64, count: u64) -> Self {
        self.shard = Some((index, count));
        self
    }

    /// Serves a liveness probe and Prometheus metrics over HTTP on `address` (`HOST:PORT`; port 0
    /// picks a free one) while the operator runs — kopf's `--liveness`, the `--liveness` flag of
    /// [`run`](crate::run).
    ///
    /// - `GET /healthz` answers `200` while the event loop runs and its source is connected, and
    ///   `503` otherwise, with the reason in the body: before the loop starts (startup handlers,
    ///   connecting), while a Kubernetes watch is listing or retrying after a failure, and once
    ///   the loop has ended (the stop drained it; cleanup handlers run).
    /// - `GET /metrics` serves the Prometheus (OpenMetrics) text format: `memo_events_received_total`
    ///   and `memo_events_handled_total` by `kind` and `type`; `memo_handler_calls_total`,
    ///   `memo_handler_failures_total`, `memo_handler_retries_total` and the
    ///   `memo_handler_duration_seconds` histogram by `handler`; the gauges `memo_resources`,
    ///   `memo_queue_depth` and `memo_source_connected`; and `memo_shared_operations_total` (by
    ///   `store` and `operation`) and `memo_shared_errors_total` (by `store`).
    ///
    /// The address is bound when [`run`](Operator::run) starts: an address in use fails the run
    /// with an error naming it, before any handler runs. The server stops when the run ends.
    /// Without this call nothing is counted.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let (events, source) = memo_runtime::source::channel(16);
    /// memo_runtime::Operator::new()
    ///     .liveness("127.0.0.1:8080")
    ///     .source(source)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn liveness(mut self, address: impl ToString) -> Self {
        self.liveness = Some(address.to_string());
        self
    }

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
        let problems = validate(&handlers, &registry::registered_preparers(), MemoType::of::<M>());
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
            liveness,
            metrics,
        } = self;
        let shard = shard.map(|(index, count)| Shard::new(index, count)).transpose()?;
        if let Some(shard) = shard {
            tracing::info!(target: "memo", "handling shard {shard}: the resources whose key hashes to {} modulo {}", shard.index(), shard.count());
        }
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
        let phases = Phases {
            handlers: handlers.into(),
            memory,
            stop,
            grace: shutdown_timeout,
            shard,
            health,
            metrics,
        };
        let result = phases.run(memo, source, workers).await;
        drop(idle_sender);
        result
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
    shard: Option<Shard>,
    health: Health,
    /// `None` unless the operator serves metrics.
    metrics: Option<Metrics>,
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
        let dispatcher = Dispatcher::new(memo, catalog, stop.clone(), self.shard, self.metrics.clone());
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
            let metrics = self.metrics.clone();
            crate::exec::dedicated::spawn(format!("memo-{phase}"), async move {
                let failed = tokio::select! {
                    biased;
                    () = cancel.cancelled() => None,
                    failed = run_lifecycle(&selected, &memory, metrics.as_ref(), &mut memo, &watch) => failed,
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
) -> Option<&'static Registration> {
    let logger = once_cell::race::OnceBox::with_value(Box::new(Logger::operator()));
    let env = Env {
        body: None,
        event: None,
        resource: None,
        logger: &logger,
        watch,
    };
    for &handler in handlers {
        if let Err(err) = invoke::call(&Bound::new(handler, memory, metrics), memo, &env).await {
            invoke::report(handler, &env, &err);
            if handler.trigger.is_startup() {
                return Some(handler);
            }
        }
    }
    None
}
