//! What an operator counts for Prometheus (served by the liveness endpoint, see
//! [`Operator::liveness`](crate::Operator::liveness)): events, handler calls and their durations,
//! resources, queue depth, shared-memory operations.
//!
//! Every label set the event path touches is resolved once (per handler when a kind's plan is
//! built, per kind and event type with it), so that counting on the event path is an atomic add,
//! never a label lookup.

use crate::api::error::Result;
use crate::api::event::EventType;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex, OnceLock};

type HandlerLabel = [(&'static str, &'static str); 1];
type EventLabels = [(&'static str, String); 2];
type StoreLabel = [(&'static str, String); 1];
type KindLabel = [(&'static str, String); 1];
type OperationLabels = [(&'static str, String); 2];
type Durations = Family<HandlerLabel, Histogram, fn() -> Histogram>;

/// Sets gauges from the running engine's own figures, when the metrics are read.
type Collector = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric of one operator. Clones share the counters.
#[derive(Clone)]
pub(crate) struct Metrics {
    events_received: Family<EventLabels, Counter>,
    events_handled: Family<EventLabels, Counter>,
    handler_calls: Family<HandlerLabel, Counter>,
    handler_failures: Family<HandlerLabel, Counter>,
    handler_retries: Family<HandlerLabel, Counter>,
    handler_duration: Durations,
    pub(crate) resources: Gauge,
    pub(crate) queue_depth: Gauge,
    pub(crate) retries_scheduled: Gauge,
    pub(crate) source_connected: Gauge,
    /// The event counters of every kind no handler selects, together: label values come from a
    /// bounded set, whatever kinds the source sends.
    other_kinds: [Counter; 3],
    shared_operations: Family<OperationLabels, Counter>,
    shared_errors: Family<StoreLabel, Counter>,
    /// Patch requests sent for handlers, by kind.
    api_writes: Family<KindLabel, Counter>,
    /// Patch requests the API server refused (or never answered), by kind and HTTP status
    /// (`none` without an answer): a bounded set, as the kinds are the handlers'.
    api_errors: Family<EventLabels, Counter>,
    /// With `--shard auto`: the buckets this replica owns, the live replicas it sees, and its
    /// lease acquisitions and losses.
    pub(crate) shard_buckets_owned: Gauge,
    pub(crate) shard_members: Gauge,
    pub(crate) shard_acquisitions: Counter,
    pub(crate) shard_losses: Counter,
    /// Gauges that the engine's threads keep in figures of their own are set when read, not
    /// at every change.
    collector: Arc<Mutex<Option<Collector>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let events_received = Family::<EventLabels, Counter>::default();
        let other_kinds =
            EventType::ALL.map(|r#type| events_received.get_or_create_owned(&event_labels(OTHER_KINDS, r#type)));
        Metrics {
            events_received,
            other_kinds,
            events_handled: Family::default(),
            handler_calls: Family::default(),
            handler_failures: Family::default(),
            handler_retries: Family::default(),
            handler_duration: Family::new_with_constructor(handler_duration_buckets),
            resources: Gauge::default(),
            queue_depth: Gauge::default(),
            retries_scheduled: Gauge::default(),
            source_connected: Gauge::default(),
            shared_operations: Family::default(),
            shared_errors: Family::default(),
            api_writes: Family::default(),
            api_errors: Family::default(),
            shard_buckets_owned: Gauge::default(),
            shard_members: Gauge::default(),
            shard_acquisitions: Counter::default(),
            shard_losses: Counter::default(),
            collector: Arc::default(),
        }
    }
}

/// From 100 µs to about 100 s, doubling.
fn handler_duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// The clock handler calls are timed with: the CPU's time-stamp counter, calibrated once per
/// process. A read costs a fraction of a `clock_gettime` (about 36 ns on the KVM guests here),
/// and a call is timed with two.
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock (up to a fifth of a second), so that the first timed handler call does
/// not wait for it. Blocking: for `spawn_blocking`.
pub(crate) fn calibrate_clock() {
    clock();
}

impl Metrics {
    /// The counters of one handler.
    pub(crate) fn handler(&self, id: &'static str) -> HandlerMetrics {
        let label = [("handler", id)];
        HandlerMetrics {
            clock: clock().clone(),
            calls: self.handler_calls.get_or_create_owned(&label),
            failures: self.handler_failures.get_or_create_owned(&label),
            retries: self.handler_retries.get_or_create_owned(&label),
            duration: self.handler_duration.get_or_create_owned(&label),
        }
    }

    /// The event counters of one kind.
    pub(crate) fn kind(&self, kind: &str) -> KindMetrics {
        let per_type = |family: &Family<EventLabels, Counter>| {
            EventType::ALL.map(|r#type| family.get_or_create_owned(&event_labels(kind, r#type)))
        };
        KindMetrics {
            kind: kind.into(),
            received: per_type(&self.events_received),
            handled: per_type(&self.events_handled),
            api_writes: self.api_writes.get_or_create_owned(&[("kind", kind.to_owned())]),
            api_errors: self.api_errors.clone(),
        }
    }

    /// Counts an event of a kind no handler selects, under `kind="other"`: such kinds come from
    /// the source, which may send any number of them.
    pub(crate) fn received_unhandled_kind(&self, r#type: EventType) {
        self.other_kinds[r#type.index()].inc();
    }

    /// The shared-memory counters of one store.
    pub(crate) fn store(&self, store: &str) -> StoreMetrics {
        let operation = |name: &str| {
            self.shared_operations
                .get_or_create_owned(&[("store", store.to_owned()), ("operation", name.to_owned())])
        };
        StoreMetrics {
            operations: Operation::ALL.map(|op| operation(op.name())),
            errors: self.shared_errors.get_or_create_owned(&[("store", store.to_owned())]),
        }
    }

    /// Sets `collector` to run before every read of the metrics (`None`: no longer).
    pub(crate) fn collect_with(&self, collector: Option<Collector>) {
        *self.collector.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = collector;
    }

    /// The Prometheus text exposition (OpenMetrics) of every metric.
    pub(crate) fn encode(&self) -> String {
        if let Some(collect) = self
            .collector
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
        {
            collect(self);
        }
        let mut registry = Registry::with_prefix("memo");
        registry.register(
            "events_received",
            "Events read from the source, by kind and event type",
            self.events_received.clone(),
        );
        registry.register(
            "events_handled",
            "Events whose handlers have all run (succeeded, or failed for good), by kind and event type",
            self.events_handled.clone(),
        );
        registry.register(
            "handler_calls",
            "Handler calls, retries included",
            self.handler_calls.clone(),
        );
        registry.register(
            "handler_failures",
            "Handler calls that failed (an error, a panic, a timeout)",
            self.handler_failures.clone(),
        );
        registry.register(
            "handler_retries",
            "Retries of failed handlers scheduled",
            self.handler_retries.clone(),
        );
        registry.register(
            "handler_duration_seconds",
            "How long handler calls took",
            self.handler_duration.clone(),
        );
        registry.register(
            "resources",
            "Resources tracked (each with its memo)",
            self.resources.clone(),
        );
        registry.register(
            "queue_depth",
            "Work waiting behind busy resources (or behind a retry)",
            self.queue_depth.clone(),
        );
        registry.register(
            "retries_scheduled",
            "Retries of failed handlers waiting for their time",
            self.retries_scheduled.clone(),
        );
        registry.register(
            "source_connected",
            "1 while the event source is connected",
            self.source_connected.clone(),
        );
        registry.register(
            "shared_operations",
            "Shared-memory operations, by store and operation",
            self.shared_operations.clone(),
        );
        registry.register(
            "shared_errors",
            "Shared-memory operations that failed, by store",
            self.shared_errors.clone(),
        );
        registry.register(
            "api_writes",
            "Patch requests sent to the API server for handlers' patches, by kind",
            self.api_writes.clone(),
        );
        registry.register(
            "api_errors",
            "Patch requests the API server refused or never answered, by kind and HTTP status",
            self.api_errors.clone(),
        );
        registry.register(
            "shard_buckets_owned",
            "Buckets of the hash space this replica owns (--shard auto)",
            self.shard_buckets_owned.clone(),
        );
        registry.register(
            "shard_members",
            "Live replicas of this operator this replica sees (--shard auto)",
            self.shard_members.clone(),
        );
        registry.register(
            "shard_lease_acquisitions",
            "Bucket leases acquired (--shard auto)",
            self.shard_acquisitions.clone(),
        );
        registry.register(
            "shard_lease_losses",
            "Bucket leases lost: not renewed in time (--shard auto)",
            self.shard_losses.clone(),
        );
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }
}

/// The `kind` label of events of every kind no handler selects.
pub(crate) const OTHER_KINDS: &str = "other";

fn event_labels(kind: &str, r#type: EventType) -> EventLabels {
    [("kind", kind.to_owned()), ("type", r#type.as_str().to_owned())]
}

/// The counters of one handler, at hand in its binding.
pub(crate) struct HandlerMetrics {
    clock: quanta::Clock,
    calls: Counter,
    failures: Counter,
    retries: Counter,
    duration: Histogram,
}

impl HandlerMetrics {
    /// When a call starts, for [`HandlerMetrics::called`].
    pub(crate) fn start(&self) -> u64 {
        self.clock.raw()
    }

    /// Counts a call that started at `started`.
    pub(crate) fn called(&self, started: u64, failed: bool) {
        let nanos = self.clock.delta_as_nanos(started, self.clock.raw());
        self.calls.inc();
        if failed {
            self.failures.inc();
        }
        self.duration.observe(nanos as f64 / 1e9);
    }

    pub(crate) fn retry_scheduled(&self) {
        self.retries.inc();
    }
}

/// The event counters of one kind, by event type, at hand in the kind's plan.
pub(crate) struct KindMetrics {
    kind: Box<str>,
    received: [Counter; 3],
    handled: [Counter; 3],
    api_writes: Counter,
    api_errors: Family<EventLabels, Counter>,
}

impl KindMetrics {
    pub(crate) fn received(&self, r#type: EventType) {
        self.received[r#type.index()].inc();
    }

    pub(crate) fn handled(&self, r#type: EventType) {
        self.handled[r#type.index()].inc();
    }

    /// Counts `requests` patch requests sent for this kind.
    pub(crate) fn api_writes(&self, requests: usize) {
        self.api_writes.inc_by(requests as u64);
    }

    /// Counts a patch request that failed with HTTP status `code` (`None`: no answer). Rare:
    /// the label set is looked up here.
    pub(crate) fn api_error(&self, code: Option<u16>) {
        let code = code.map_or_else(|| "none".to_owned(), |code| code.to_string());
        self.api_errors
            .get_or_create(&[("kind", self.kind.to_string()), ("code", code)])
            .inc();
    }
}

/// What a shared memory does, as counted.
#[derive(Clone, Copy)]
pub(crate) enum Operation {
    Get,
    Set,
    Update,
    Remove,
    Contains,
    Keys,
    Clear,
    Lock,
}

impl Operation {
    const ALL: [Operation; 8] = [
        Operation::Get,
        Operation::Set,
        Operation::Update,
        Operation::Remove,
        Operation::Contains,
        Operation::Keys,
        Operation::Clear,
        Operation::Lock,
    ];

    fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Update => "update",
            Operation::Remove => "remove",
            Operation::Contains => "contains",
            Operation::Keys => "keys",
            Operation::Clear => "clear",
            Operation::Lock => "lock",
        }
    }
}

/// The shared-memory counters of one store, at hand in each memory of it.
pub(crate) struct StoreMetrics {
    operations: [Counter; 8],
    errors: Counter,
}

impl StoreMetrics {
    /// Counts an operation and, if it failed, an error; passes its result through.
    pub(crate) fn count<T>(&self, operation: Operation, result: Result<T>) -> Result<T> {
        self.operations[operation as usize].inc();
        if result.is_err() {
            self.errors.inc();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_with_their_labels() {
        let metrics = Metrics::default();
        let kind = metrics.kind("KopfExample");
        kind.received(EventType::Added);
        kind.received(EventType::Added);
        kind.handled(EventType::Modified);
        kind.api_writes(2);
        kind.api_error(Some(422));
        metrics.received_unhandled_kind(EventType::Deleted);
        let handler = metrics.handler("app::create");
        handler.called(handler.start(), true);
        handler.retry_scheduled();
        let store = metrics.store("in-process");
        let _ = store.count(Operation::Set, Ok(()));
        let _ = store.count::<()>(Operation::Get, Err(crate::api::error::Error::Store("down".into())));
        metrics.resources.set(7);
        metrics.shard_buckets_owned.set(85);
        metrics.shard_losses.inc();
        let text = metrics.encode();
        for line in [
            r#"memo_events_received_total{kind="KopfExample",type="ADDED"} 2"#,
            r#"memo_events_received_total{kind="KopfExample",type="DELETED"} 0"#,
            r#"memo_events_received_total{kind="other",type="DELETED"} 1"#,
            r#"memo_events_handled_total{kind="KopfExample",type="MODIFIED"} 1"#,
            r#"memo_handler_calls_total{handler="app::create"} 1"#,
            r#"memo_handler_failures_total{handler="app::create"} 1"#,
            r#"memo_handler_retries_total{handler="app::create"} 1"#,
            r#"memo_handler_duration_seconds_count{handler="app::create"} 1"#,
            r#"memo_shared_operations_total{store="in-process",operation="set"} 1"#,
            r#"memo_shared_operations_total{store="in-process",operation="get"} 1"#,
            r#"memo_shared_errors_total{store="in-process"} 1"#,
            r#"memo_api_writes_total{kind="KopfExample"} 2"#,
            r#"memo_api_errors_total{kind="KopfExample",code="422"} 1"#,
            "memo_resources 7",
            "memo_shard_buckets_owned 85",
            "memo_shard_lease_losses_total 1",
            "memo_queue_depth 0",
            "memo_retries_scheduled 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
