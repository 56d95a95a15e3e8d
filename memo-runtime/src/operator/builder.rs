//! Building an operator: its memo, name, store, workers, source, signals, shard and liveness
//! endpoint.

use crate::api::post_events::PostEvents;
use crate::operator::{Operator, ProgressIn};
use crate::shared::Shared;
use crate::source::EventSource;
use crate::store::ProgressStore;
use crate::store::{Store, StoreRef};
use std::time::Duration;

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
            shard_auto: self.shard_auto,
            lease_namespace: self.lease_namespace,
            lease_duration: self.lease_duration,
            liveness: self.liveness,
            metrics: self.metrics,
            post_events: self.post_events,
            cluster: self.cluster,
            progress: self.progress,
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

    /// Where shared memory lives (default: an [`InProcessStore`](crate::store::InProcessStore) of this operator's own). Give a
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
    /// during a stop forces it at once: [`run`](Operator::run) returns [`Error::Forced`](crate::Error::Forced).
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
        self.shard_auto = false;
        self
    }

    /// Joins the group of replicas with the same [name](Operator::name) and
    /// [store](Operator::store) (Redis, for replicas in several processes) and handles the
    /// resources of the [buckets](crate::shard::BUCKETS) it holds leases on — `--shard auto`.
    ///
    /// Live replicas converge to an even share (within one bucket), moving few buckets when one
    /// joins or leaves. A replica that stops (SIGTERM) releases its buckets at once; one that dies
    /// loses them when their leases expire (the store's lease, 15 s by default, plus a renewal
    /// period of a third of it). A replica that cannot renew a lease stops handling its bucket
    /// before the lease can expire, so that no two replicas handle one bucket. With a stream
    /// source, every replica reads the whole stream and a new owner handles what it reads from
    /// then on: the events of a bucket between the loss of its owner and the takeover are not
    /// handled.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// let replica = Operator::new().name("counter").shard_auto();
    /// # drop(replica);
    /// ```
    pub fn shard_auto(mut self) -> Self {
        self.shard = None;
        self.shard_auto = true;
        self
    }

    /// With [`shard_auto`](Operator::shard_auto), against a cluster: keep the membership and
    /// bucket leases as `coordination.k8s.io/v1` Lease objects in `namespace` (the operator's
    /// own, usually) instead of the store — `--lease-namespace NS`, for replicas without Redis.
    /// Needs the operator to run against the cluster (or [`Operator::client`]).
    #[cfg(feature = "kube")]
    pub fn lease_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.lease_namespace = Some(namespace.into());
        self
    }

    /// How long a Kubernetes shard Lease lasts unless renewed (default 15 s; renewed every third
    /// of it). Store leases last the store's lease (`RedisStore::with_lease`, `--lease-duration`).
    pub fn lease_duration(mut self, lease: Duration) -> Self {
        self.lease_duration = Some(lease);
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

    /// Which handler outcomes are posted as Kubernetes Events on their object when the operator
    /// runs against a cluster (default [`PostEvents::Warning`]: a failure, temporary or for
    /// good) — the `--post-events` flag of [`run`](crate::run). At most one such Event per
    /// object every [`PostEvents::MIN_INTERVAL`].
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// let quiet = Operator::new().post_events(PostEvents::None);
    /// # drop(quiet);
    /// ```
    pub fn post_events(mut self, post: PostEvents) -> Self {
        self.post_events = post;
        self
    }

    /// The Kubernetes client handlers asking for `client: &kube::Client` get when the source is
    /// not [`source::kubernetes`](crate::source::kubernetes) (which supplies its own). Without
    /// either, such a handler stops the operator from starting (`M0005`). Patches still need
    /// the Kubernetes source: with another, a handler's patch is logged as dropped.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let client = memo_runtime::kube::Client::try_default()
    ///     .await
    ///     .map_err(|err| memo_runtime::Error::Kubernetes(err.to_string()))?;
    /// let (_events, source) = memo_runtime::source::channel(16);
    /// memo_runtime::Operator::new().client(client).source(source).run().await
    /// # }
    /// ```
    #[cfg(feature = "kube")]
    pub fn client(mut self, client: kube::Client) -> Self {
        self.cluster = Some(std::sync::Arc::new(crate::source::ClientOnly(client)));
        self
    }

    /// Where progress is kept on objects: in annotations on each object (the default; with a
    /// source that is not a cluster, not kept) or in the operator's shared-memory store, for any
    /// source — the `--progress-store annotations|shared` flag of [`run`](crate::run).
    ///
    /// With progress kept, a restarted operator runs no handler twice and misses no change: an
    /// object without a record gets its `create` handlers, one whose essence changed since its
    /// record its `update` handlers (the `diff` against the recorded essence), an event left
    /// unfinished goes on where it stopped (retry counts kept), and a kind with `delete` handlers
    /// (without `optional`) holds a finalizer on its objects. See the README's "Restarts and
    /// deletions".
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// let operator = Operator::new().name("counter").progress_in(ProgressIn::Shared);
    /// # drop(operator);
    /// ```
    pub fn progress_in(mut self, place: ProgressIn) -> Self {
        self.progress.place = place;
        self.progress.custom = None;
        self
    }

    /// Keeps progress in a [`ProgressStore`] of your own, for any source.
    pub fn progress_store(mut self, store: impl ProgressStore) -> Self {
        self.progress.custom = Some(std::sync::Arc::new(store));
        self
    }

    /// The prefix of the annotations memo keeps its progress in (default
    /// [`DEFAULT_PROGRESS_PREFIX`](crate::store::DEFAULT_PROGRESS_PREFIX), `memo.dev`:
    /// `memo.dev/last-handled`, `memo.dev/progress`) — `--progress-prefix`. Annotations under it
    /// are the operator's own: they are not part of any object's essence.
    ///
    /// ```
    /// let operator = memo_runtime::Operator::new().progress_prefix("example.com");
    /// # drop(operator);
    /// ```
    pub fn progress_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.progress.prefix = prefix.into();
        self
    }

    /// The finalizer memo puts on objects whose kind has `delete` handlers without `optional`
    /// (default `memo.dev/finalizer`) — `--finalizer NAME`.
    ///
    /// ```
    /// let operator = memo_runtime::Operator::new().finalizer("example.com/cleanup");
    /// # drop(operator);
    /// ```
    pub fn finalizer(mut self, name: impl Into<String>) -> Self {
        self.progress.finalizer = name.into();
        self
    }
}
