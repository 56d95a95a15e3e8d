//! What handlers send back to the cluster: an event's patches, merged and written once after the
//! last of its handlers ran, and their outcomes as Kubernetes Events.

use crate::api::patch::Patch;
use crate::api::post_events::PostEvents;
use crate::api::recorder::{Note, Severity};
use crate::api::resource::Resource;
use crate::contract::cluster::{Cluster, Written};
use crate::contract::registry::Registration;
use crate::exec::progress::Progress;
use crate::observe::metrics::KindMetrics;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a write may take before it is given up (logged and counted as an error): a stuck
/// API server must not hold a worker for ever.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many objects' last outcome Events are remembered for the rate limit; past it, those
/// older than the interval are forgotten.
const REMEMBERED_OBJECTS: usize = 4096;

/// Where an operator's handlers write: the cluster, if any, and which outcomes are posted.
/// Clones share the rate limit.
#[derive(Clone, Default)]
pub(crate) struct Writeback {
    cluster: Option<Arc<dyn Cluster>>,
    post: PostEvents,
    /// Where progress is recorded, if it is.
    progress: Option<Progress>,
    /// `PREFIX/` of the annotations memo writes itself: left out of essences.
    own_annotations: Option<Arc<str>>,
    /// When the last outcome Event of each severity about each object was posted.
    posted: Arc<Mutex<HashMap<Box<str>, Instant>>>,
}

/// The patches of one unit of work's handlers that succeeded, merged in order. Nothing is
/// allocated until a handler's patch is not empty.
#[derive(Default)]
pub(crate) struct Patches {
    merged: Option<Patch>,
    handlers: Vec<&'static str>,
}

impl Patches {
    /// A fresh patch for one call of `handler`, if it asks for one.
    #[inline]
    pub(crate) fn slot(handler: &Registration) -> Option<Patch> {
        handler.uses_patch.then(Patch::new)
    }

    /// Keeps the patch of a handler that succeeded.
    pub(crate) fn keep(&mut self, handler: &'static Registration, patch: Option<Patch>) {
        let Some(patch) = patch.filter(|patch| !patch.is_empty()) else {
            return;
        };
        self.handlers.push(handler.id);
        match &mut self.merged {
            Some(merged) => merged.merge_patch(patch),
            None => self.merged = Some(patch),
        }
    }

    /// Adds what the runtime itself writes (progress, finalizer), after the handlers' patches.
    pub(crate) fn add_own(&mut self, patch: Patch) {
        if patch.is_empty() {
            return;
        }
        match &mut self.merged {
            Some(merged) => merged.merge_patch(patch),
            None => self.merged = Some(patch),
        }
    }

    /// Whether any handler's patch was kept.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.merged.is_some()
    }

    fn named(&self) -> String {
        if self.handlers.is_empty() {
            return "memo's progress".to_owned();
        }
        let names: Vec<String> = self.handlers.iter().map(|id| format!("`{id}`")).collect();
        names.join(", ")
    }
}

impl Writeback {
    pub(crate) fn new(cluster: Option<Arc<dyn Cluster>>, post: PostEvents) -> Self {
        Writeback {
            cluster,
            post,
            progress: None,
            own_annotations: None,
            posted: Arc::default(),
        }
    }

    /// The same, recording progress as `progress` says.
    pub(crate) fn recording(mut self, progress: Option<Progress>, own_annotations: Arc<str>) -> Self {
        self.progress = progress;
        self.own_annotations = Some(own_annotations);
        self
    }

    pub(crate) fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    /// `PREFIX/` of the annotations memo writes itself (`memo.dev/` by default).
    pub(crate) fn own_annotations(&self) -> &str {
        self.own_annotations
            .as_deref()
            .unwrap_or(crate::api::essence::MEMO_ANNOTATIONS)
    }

    pub(crate) fn cluster(&self) -> Option<&dyn Cluster> {
        self.cluster.as_deref()
    }

    /// The cluster, to keep.
    pub(crate) fn shared_cluster(&self) -> Option<Arc<dyn Cluster>> {
        self.cluster.clone()
    }

    /// Writes the merged patch of `object`'s handlers, once; `gone` when the event said the
    /// object was deleted (nothing to write to).
    pub(crate) async fn apply(
        &self,
        patches: Patches,
        object: &Value,
        resource: &Resource<'_>,
        gone: bool,
        metrics: Option<&KindMetrics>,
    ) {
        let Some(patch) = patches.merged.as_ref() else {
            return;
        };
        if gone {
            about!(
                debug,
                resource,
                "the object is deleted: the patch of {} is not applied",
                patches.named()
            );
            return;
        }
        let Some(write) = self.cluster().and_then(|cluster| cluster.write(object, patch.clone())) else {
            log_dropped(&patches, resource);
            return;
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(Written::Applied(requests))) => {
                if let Some(metrics) = metrics {
                    metrics.api_writes(requests);
                }
            }
            Ok(Ok(Written::Gone)) => {
                about!(
                    debug,
                    resource,
                    "the object is gone: the patch of {} is not applied",
                    patches.named()
                );
            }
            Ok(Err(err)) => {
                if let Some(metrics) = metrics {
                    metrics.api_error(err.code);
                }
                about!(
                    warn,
                    resource,
                    "the patch of {} was not applied: {err}",
                    patches.named()
                );
            }
            Err(_) => {
                if let Some(metrics) = metrics {
                    metrics.api_error(None);
                }
                about!(
                    warn,
                    resource,
                    "the patch of {} got no answer within {WRITE_TIMEOUT:?}; it may or may not be applied",
                    patches.named()
                );
            }
        }
    }

    /// Posts a `Warning` Event about `object`: `handler` failed, as `what` says.
    pub(crate) fn failed(&self, object: &Value, resource: &Resource<'_>, handler: &Registration, what: String) {
        if self.post >= PostEvents::Warning {
            self.post_outcome(
                object,
                resource,
                Severity::Warning,
                "HandlerFailed",
                format!("handler `{}` {what}", handler.id),
            );
        }
    }

    /// Posts a `Normal` Event about `object` (with [`PostEvents::All`]): `handler` succeeded.
    /// Only create, update and delete handlers' successes are posted, as kopf posts them.
    #[inline]
    pub(crate) fn succeeded(&self, object: &Value, resource: &Resource<'_>, handler: &Registration) {
        if self.post == PostEvents::All && crate::exec::retry::retried(handler) {
            self.post_outcome(
                object,
                resource,
                Severity::Normal,
                "HandlerSucceeded",
                format!("handler `{}` succeeded", handler.id),
            );
        }
    }

    fn post_outcome(&self, object: &Value, resource: &Resource<'_>, severity: Severity, reason: &str, message: String) {
        let Some(sink) = self.cluster().and_then(|cluster| cluster.events()) else {
            return;
        };
        // Limited per object and severity: a success posted does not hold back a failure.
        let limited = match severity {
            Severity::Normal => format!("{}\0normal", resource.key.lookup()),
            Severity::Warning => format!("{}\0warning", resource.key.lookup()),
        };
        if !self.may_post(&limited, Instant::now()) {
            about!(
                debug,
                resource,
                "an Event about this object was posted less than {:?} ago: `{reason}` not posted",
                PostEvents::MIN_INTERVAL
            );
            return;
        }
        sink.post(
            object,
            Note {
                severity,
                reason: reason.to_owned(),
                message,
            },
        );
    }

    /// Whether an outcome Event about the object `lookup` may be posted `now`; if so, it counts.
    fn may_post(&self, lookup: &str, now: Instant) -> bool {
        let mut posted = self.posted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(last) = posted.get(lookup)
            && now.duration_since(*last) < PostEvents::MIN_INTERVAL
        {
            return false;
        }
        if posted.len() >= REMEMBERED_OBJECTS {
            posted.retain(|_, last| now.duration_since(*last) < PostEvents::MIN_INTERVAL);
        }
        posted.insert(lookup.into(), now);
        true
    }
}

/// Logs, once per handler and process, that a patch was dropped for want of a cluster.
fn log_dropped(patches: &Patches, resource: &Resource<'_>) {
    static LOGGED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut logged = LOGGED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for &handler in &patches.handlers {
        if logged.insert(handler) {
            tracing::warn!(
                target: "memo",
                handler,
                kind = resource.kind,
                namespace = resource.namespace().unwrap_or_default(),
                name = resource.name(),
                "handler `{handler}` patched its object, but the operator does not run against a cluster: \
                 the patch is dropped (said once per handler)",
            );
        }
    }
}

/// A `tracing` event at `$level` about `$resource`, naming its kind, namespace and name.
macro_rules! about {
    ($level:ident, $resource:expr_2021, $($message:tt)+) => {
        tracing::$level!(
            target: "memo",
            kind = $resource.kind,
            namespace = $resource.namespace().unwrap_or_default(),
            name = $resource.name(),
            $($message)+
        )
    };
}
pub(crate) use about;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_of_succeeded_handlers_merge_in_order() {
        static FIRST: Registration = crate::contract::registry::tests_support::registration("first");
        let mut patches = Patches::default();
        patches.keep(&FIRST, None);
        patches.keep(&FIRST, Some(Patch::new()));
        assert!(patches.merged.is_none(), "empty patches keep nothing");
        let mut one = Patch::new();
        one.set("/status/phase", "A");
        one.set("/status/size", 1);
        let mut two = Patch::new();
        two.set("/status/phase", "B");
        two.remove("/metadata/labels/x");
        patches.keep(&FIRST, Some(one));
        patches.keep(&FIRST, Some(two));
        assert_eq!(
            patches.merged.unwrap().as_value(),
            &serde_json::json!({"status": {"phase": "B", "size": 1}, "metadata": {"labels": {"x": null}}})
        );
    }

    /// A cluster whose API server refuses every write with `code`, or never answers (`None`).
    struct Refusing(Option<u16>);

    impl Cluster for Refusing {
        #[cfg(feature = "kube")]
        fn client(&self) -> &kube::Client {
            unreachable!("not asked for in these tests")
        }

        fn events(&self) -> Option<Arc<dyn crate::api::recorder::EventSink>> {
            None
        }

        fn report_as(&self, _: &str) {}

        fn write<'a>(&'a self, _: &'a Value, _: Patch) -> Option<crate::contract::cluster::Writing<'a>> {
            Some(match self.0 {
                Some(code) => Box::pin(std::future::ready(Err(crate::contract::cluster::WriteError {
                    code: Some(code),
                    message: format!("{code} refused"),
                }))),
                None => Box::pin(std::future::pending()),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refused_and_unanswered_writes_are_counted_by_kind_and_status() {
        static FIRST: Registration = crate::contract::registry::tests_support::registration("first");
        let metrics = crate::observe::metrics::Metrics::default();
        let kind = metrics.kind("KopfExample");
        let object = serde_json::json!({"kind": "KopfExample", "metadata": {"name": "e1", "uid": "u1"}});
        let admitted = crate::api::resource::Admitted::read(&object).unwrap();
        let key = crate::api::resource::ResourceKey::new("u1", &admitted);
        let resource = Resource {
            kind: "KopfExample",
            key: &key,
        };
        for code in [Some(422), None] {
            let writeback = Writeback::new(Some(Arc::new(Refusing(code))), PostEvents::Warning);
            let mut patches = Patches::default();
            let mut patch = Patch::new();
            patch.set("/status/phase", "x");
            patches.keep(&FIRST, Some(patch));
            // Unanswered: given up after `WRITE_TIMEOUT` (paused time runs ahead).
            writeback.apply(patches, &object, &resource, false, Some(&kind)).await;
        }
        let text = metrics.encode();
        for line in [
            r#"memo_api_errors_total{kind="KopfExample",code="422"} 1"#,
            r#"memo_api_errors_total{kind="KopfExample",code="none"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn outcome_events_are_limited_per_object() {
        let writeback = Writeback::default();
        let now = Instant::now();
        assert!(writeback.may_post("a", now));
        assert!(!writeback.may_post("a", now + Duration::from_secs(1)));
        assert!(writeback.may_post("b", now + Duration::from_secs(1)));
        assert!(writeback.may_post("a", now + PostEvents::MIN_INTERVAL));
    }
}
