//! Which handlers apply to which resources: selectors, and per-kind plans built on first sight.

use crate::api::event::EventType;
use crate::contract::registry::{EventFilter, Registration, Trigger};
use crate::observe::metrics::{KindMetrics, Metrics};
use crate::plan::bound::Bound;
use crate::shared::SharedMemory;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A parsed `KIND` selector: `"KopfExample"`, `"kopfexample"`, `"kopfexamples"`, or any of them
/// qualified with an API group, `"kopfexamples.kopf.dev"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector<'s> {
    name: &'s str,
    group: Option<&'s str>,
}

impl<'s> Selector<'s> {
    pub(crate) fn parse(text: &'s str) -> Self {
        match text.split_once('.') {
            Some((name, group)) => Selector {
                name,
                group: Some(group),
            },
            None => Selector {
                name: text,
                group: None,
            },
        }
    }

    /// Whether an object of `kind` in `api_version` (`"group/version"` or a core `"version"`)
    /// is selected.
    pub(crate) fn matches(&self, kind: &str, api_version: &str) -> bool {
        let object_group = crate::api::resource::api_group(api_version);
        if let Some(group) = self.group
            && !group.eq_ignore_ascii_case(object_group)
        {
            return false;
        }
        // Exactly the kind, its lowercase singular, or its plural as the API server names the
        // resource (not "any trailing `s` stripped": `ingresses` is `Ingress`). Called when a
        // kind's plan is built, once per kind and version.
        self.name == kind
            || self.name.eq_ignore_ascii_case(kind)
            || self
                .name
                .eq_ignore_ascii_case(&crate::plan::plural::plural_in(object_group, kind))
    }

    /// The kind or plural named, without its group.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(crate) fn name(&self) -> &'s str {
        self.name
    }

    /// The API group named, if any.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(crate) fn group(&self) -> Option<&'s str> {
        self.group
    }
}

/// A timer handler as a kind's plan runs it.
pub(crate) struct TimerSpec {
    pub(crate) handler: Bound,
    pub(crate) interval: Duration,
    pub(crate) initial_delay: Duration,
}

/// The handlers of one kind (in one API version), by event type, in registry order.
pub(crate) struct KindPlan {
    /// The kind, as its objects spell it.
    pub(crate) kind: Box<str>,
    added: Box<[Bound]>,
    modified: Box<[Bound]>,
    deleted: Box<[Bound]>,
    pub(crate) timers: Box<[TimerSpec]>,
    /// Whether any handler is an `update` handler: then each resource keeps the last object
    /// handled, to compare the next with.
    updates: bool,
    /// Whether any handler is a create, update, delete or resume handler: then, with a progress
    /// store, what was handled of each object is recorded.
    progress: bool,
    /// Whether a delete handler without `optional` holds a finalizer on the kind's objects.
    finalizes: bool,
    /// `None` unless the operator serves metrics.
    pub(crate) metrics: Option<KindMetrics>,
}

impl KindPlan {
    pub(crate) fn handlers(&self, r#type: EventType) -> &[Bound] {
        match r#type {
            EventType::Added => &self.added,
            EventType::Modified => &self.modified,
            EventType::Deleted => &self.deleted,
        }
    }

    pub(crate) fn has_timers(&self) -> bool {
        !self.timers.is_empty()
    }

    pub(crate) fn has_updates(&self) -> bool {
        self.updates
    }

    /// Whether what was handled of each object is recorded (with a progress store).
    pub(crate) fn tracks_progress(&self) -> bool {
        self.progress
    }

    /// Whether its objects carry the operator's finalizer (with a progress store), for delete
    /// handlers that must run however the object goes.
    pub(crate) fn finalizes(&self) -> bool {
        self.finalizes
    }

    /// Whether a resource keeps its last handled object: for timers (they see it) and for
    /// `update` handlers (the next version is compared with it).
    pub(crate) fn keeps_body(&self) -> bool {
        self.updates || self.has_timers()
    }
}

/// An API version of a kind, and the index of its plan, if any handler wants its objects.
type KnownVersion = (Box<str>, Option<usize>);

/// Maps `(kind, apiVersion)` to its plan, computing each plan once.
pub(crate) struct Catalog {
    handlers: Vec<&'static Registration>,
    memory: SharedMemory,
    metrics: Option<Metrics>,
    /// For each kind, its API versions seen so far and the index of their plan in `plans`
    /// (`None`: no handler wants these objects). Indices, not references, so that a hit costs one
    /// hash lookup.
    by_kind: HashMap<Box<str>, Vec<KnownVersion>, ahash::RandomState>,
    plans: Vec<Arc<KindPlan>>,
    /// How many of `by_kind`'s entries say "no plan".
    misses: usize,
}

/// How many `(kind, apiVersion)` pairs that no handler selects are remembered: the source chooses
/// them, and may send any number. Past it, such a pair is worked out again at each event (a pass
/// over the handlers' selectors) instead of growing the table.
const REMEMBERED_MISSES: usize = 1024;

impl Catalog {
    /// `handlers` in registry order; startup and cleanup handlers are ignored here.
    pub(crate) fn new(handlers: &[&'static Registration], memory: SharedMemory, metrics: Option<Metrics>) -> Self {
        let handlers = handlers
            .iter()
            .copied()
            .filter(|h| matches!(h.trigger, Trigger::Event { .. } | Trigger::Timer { .. }))
            .collect();
        Catalog {
            handlers,
            memory,
            metrics,
            by_kind: HashMap::default(),
            plans: Vec::new(),
            misses: 0,
        }
    }

    /// A catalog of the same handlers, with no plan built yet: each lane builds its own, so that
    /// no lane waits for another to look one up.
    pub(crate) fn fresh(&self) -> Catalog {
        Catalog {
            handlers: self.handlers.clone(),
            memory: self.memory.clone(),
            metrics: self.metrics.clone(),
            by_kind: HashMap::default(),
            plans: Vec::new(),
            misses: 0,
        }
    }

    /// The plan for objects of this kind, or `None` if no handler selects them.
    pub(crate) fn plan(&mut self, kind: &str, api_version: &str) -> Option<&Arc<KindPlan>> {
        let known = self.by_kind.get(kind).and_then(|versions| {
            versions
                .iter()
                .find(|(version, _)| &**version == api_version)
                .map(|&(_, index)| index)
        });
        let index = match known {
            Some(index) => index,
            None => self.add(kind, api_version),
        };
        index.map(|index| &self.plans[index])
    }

    fn add(&mut self, kind: &str, api_version: &str) -> Option<usize> {
        let index = build_plan(&self.handlers, &self.memory, self.metrics.as_ref(), kind, api_version).map(|plan| {
            self.plans.push(Arc::new(plan));
            self.plans.len() - 1
        });
        if index.is_none() {
            if self.misses >= REMEMBERED_MISSES {
                return None;
            }
            self.misses += 1;
        }
        self.by_kind
            .entry(kind.into())
            .or_default()
            .push((api_version.into(), index));
        index
    }
}

fn build_plan(
    handlers: &[&'static Registration],
    memory: &SharedMemory,
    metrics: Option<&Metrics>,
    kind: &str,
    api_version: &str,
) -> Option<KindPlan> {
    let mut added = Vec::new();
    let mut modified = Vec::new();
    let mut deleted = Vec::new();
    let mut timers = Vec::new();
    let mut resumed = Vec::new();
    for &handler in handlers {
        match handler.trigger {
            Trigger::Event {
                resource,
                filter: EventFilter::Resume,
            } if Selector::parse(resource).matches(kind, api_version) => resumed.push(handler),
            Trigger::Event { resource, filter } if Selector::parse(resource).matches(kind, api_version) => {
                for (r#type, list) in [
                    (EventType::Added, &mut added),
                    (EventType::Modified, &mut modified),
                    (EventType::Deleted, &mut deleted),
                ] {
                    if filter.accepts(r#type) {
                        list.push(Bound::new(handler, memory, metrics));
                    }
                }
            }
            Trigger::Timer {
                resource,
                interval,
                initial_delay,
            } if Selector::parse(resource).matches(kind, api_version) => timers.push(TimerSpec {
                handler: Bound::new(handler, memory, metrics),
                interval,
                initial_delay,
            }),
            _ => {}
        }
    }
    if added.is_empty() && modified.is_empty() && deleted.is_empty() && timers.is_empty() && resumed.is_empty() {
        return None;
    }
    // After every create and update handler: a resumed object is first brought up to date.
    for handler in resumed {
        added.push(Bound::new(handler, memory, metrics));
        modified.push(Bound::new(handler, memory, metrics));
    }
    let updates = modified.iter().any(|bound| bound.handler.trigger.is_update());
    // `optional` delete handlers alone need no record: they run on `DELETED`, whatever came
    // before.
    let progress = added
        .iter()
        .chain(&modified)
        .chain(&deleted)
        .any(|bound| bound.handler.trigger.is_retried() && !bound.handler.optional);
    let finalizes = deleted.iter().any(|bound| {
        matches!(
            bound.handler.trigger,
            Trigger::Event {
                filter: EventFilter::Deleted,
                ..
            }
        ) && !bound.handler.optional
    });
    Some(KindPlan {
        kind: kind.into(),
        added: added.into(),
        modified: modified.into(),
        deleted: deleted.into(),
        updates,
        progress,
        finalizes,
        timers: timers.into(),
        metrics: metrics.map(|metrics| metrics.kind(kind)),
    })
}

#[cfg(test)]
mod tests {
    use super::{Catalog, REMEMBERED_MISSES, Selector};
    use crate::shared::SharedMemory;
    use crate::store::{InProcessStore, StoreRef};

    #[test]
    fn kinds_no_handler_selects_do_not_grow_the_table_without_bound() {
        let memory = SharedMemory::new(Vec::new(), StoreRef::of(InProcessStore::new()), "bot".into());
        let mut catalog = Catalog::new(&[], memory, None);
        for n in 0..REMEMBERED_MISSES * 3 {
            assert!(catalog.plan(&format!("Kind{n}"), "v1").is_none());
        }
        assert_eq!(catalog.by_kind.len(), REMEMBERED_MISSES);
        // A remembered one is still answered.
        assert!(catalog.plan("Kind0", "v1").is_none());
    }

    #[test]
    fn selectors_match_kind_singular_plural_and_group() {
        let cases = [
            ("KopfExample", "kopf.dev/v1", true),
            ("kopfexample", "kopf.dev/v1", true),
            ("kopfexamples", "kopf.dev/v1", true),
            ("KOPFEXAMPLES", "kopf.dev/v1", true),
            ("kopfexamples.kopf.dev", "kopf.dev/v1", true),
            ("kopfexample.kopf.dev", "kopf.dev/v1", true),
            ("kopfexamples.other.dev", "kopf.dev/v1", false),
            ("kopfexamplesx", "kopf.dev/v1", false),
            ("kopfexampl", "kopf.dev/v1", false),
            ("Pod", "kopf.dev/v1", false),
        ];
        for (selector, api_version, expected) in cases {
            assert_eq!(
                Selector::parse(selector).matches("KopfExample", api_version),
                expected,
                "{selector} vs KopfExample in {api_version}"
            );
        }
    }

    #[test]
    fn plurals_are_the_api_servers_not_a_stripped_s() {
        let cases = [
            ("ingresses", "Ingress", "networking.k8s.io/v1", true),
            ("ingresses.networking.k8s.io", "Ingress", "networking.k8s.io/v1", true),
            ("ingress", "Ingress", "networking.k8s.io/v1", true),
            ("ingresse", "Ingress", "networking.k8s.io/v1", false),
            ("networkpolicies", "NetworkPolicy", "networking.k8s.io/v1", true),
            ("networkpolicys", "NetworkPolicy", "networking.k8s.io/v1", false),
            ("endpoints", "Endpoints", "v1", true),
            ("storageclasses", "StorageClass", "storage.k8s.io/v1", true),
            ("pods", "Pod", "v1", true),
        ];
        for (selector, kind, api_version, expected) in cases {
            assert_eq!(
                Selector::parse(selector).matches(kind, api_version),
                expected,
                "{selector} vs {kind} in {api_version}"
            );
        }
    }

    #[test]
    fn core_group_objects_match_only_unqualified_or_empty_group() {
        assert!(Selector::parse("pods").matches("Pod", "v1"));
        assert!(!Selector::parse("pods.apps").matches("Pod", "v1"));
        assert!(Selector::parse("deployments.apps").matches("Deployment", "apps/v1"));
    }
}
