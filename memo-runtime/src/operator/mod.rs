//! The operator: what it is made of (here), how it is built (`builder.rs`), and how a run goes,
//! phase by phase: checks, startup handlers, events, graceful stop, cleanup (`phases.rs`).

mod builder;
mod leases;
mod phases;

use crate::api::memo::Memo;
use crate::api::post_events::PostEvents;
use crate::contract::cluster::Cluster;
use crate::contract::registry;
use crate::exec::progress::DEFAULT_FINALIZER;
use crate::observe::metrics::Metrics;
use crate::shared::DEFAULT_BOT_NAME;
use crate::shared::SharedMemory;
use crate::shared::preparers::Prepare;
use crate::source::EventSource;
use crate::store::{DEFAULT_PROGRESS_PREFIX, ProgressStore};
use crate::store::{InProcessStore, StoreRef};
use std::sync::Arc;
use std::time::Duration;

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
    /// `--shard auto`: buckets owned through leases in the store.
    shard_auto: bool,
    /// With `--shard auto`: Kubernetes Leases in this namespace instead of the store's.
    lease_namespace: Option<String>,
    /// How long a shard lease lasts unless renewed (the store's own for store leases).
    lease_duration: Option<Duration>,
    liveness: Option<String>,
    metrics: Metrics,
    post_events: PostEvents,
    /// A cluster of the operator's own, for handlers' `client` with a source that is not one.
    cluster: Option<Arc<dyn Cluster>>,
    /// Where and how progress is kept on objects.
    progress: ProgressSettings,
}

/// Where an operator keeps its progress on objects (see [`Operator::progress_in`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressIn {
    /// In annotations on each object (the default), when the operator watches a cluster; with
    /// another source, progress is not kept (handlers run as the events say).
    #[default]
    Annotations,
    /// In the operator's shared-memory store (its `Operator::store`, e.g. Redis), under its
    /// name: for objects it may not annotate, and for any source.
    Shared,
}

impl std::str::FromStr for ProgressIn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "annotations" => Ok(ProgressIn::Annotations),
            "shared" => Ok(ProgressIn::Shared),
            other => Err(format!("`{other}` is not one of `annotations`, `shared`")),
        }
    }
}

#[derive(Clone)]
pub(crate) struct ProgressSettings {
    pub(crate) prefix: String,
    pub(crate) finalizer: String,
    pub(crate) place: ProgressIn,
    pub(crate) custom: Option<Arc<dyn ProgressStore>>,
}

impl Default for ProgressSettings {
    fn default() -> Self {
        ProgressSettings {
            prefix: DEFAULT_PROGRESS_PREFIX.to_owned(),
            finalizer: DEFAULT_FINALIZER.to_owned(),
            place: ProgressIn::Annotations,
            custom: None,
        }
    }
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
            shard_auto: false,
            lease_namespace: None,
            lease_duration: None,
            liveness: None,
            metrics: Metrics::default(),
            post_events: PostEvents::default(),
            cluster: None,
            progress: ProgressSettings::default(),
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
            .field("shard_auto", &self.shard_auto)
            .field("liveness", &self.liveness)
            .field("post_events", &self.post_events)
            .field("client", &self.cluster.is_some())
            .field("progress_in", &self.progress.place)
            .field("progress_prefix", &self.progress.prefix)
            .field("finalizer", &self.progress.finalizer)
            .finish()
    }
}
