//! What the engine records of each object's handling, and reads back after a restart: why an
//! event's handlers run (its cause), the essence last handled, the handlers of an unfinished
//! event, and the operator's finalizer.

use crate::api::event::EventType;
use crate::api::patch::Patch;
use crate::contract::registry::{EventFilter, Registration, Trigger};
use crate::store::progress::ProgressStore;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default finalizer memo puts on objects whose kind has delete handlers.
pub(crate) const DEFAULT_FINALIZER: &str = "memo.dev/finalizer";

/// Why an event's handlers run: which of the create, update and delete handlers are called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The object is new to the operator: its create handlers.
    Create,
    /// Its essence changed since it was last handled: its update handlers.
    Update,
    /// Its deletion started and it holds the operator's finalizer: its delete handlers, then the
    /// finalizer goes.
    Finalize,
    /// It is gone (`DELETED`): the delete handlers that have not run (`optional` ones, or all
    /// without a finalizer).
    Deleted,
    /// Nothing changed that create, update or delete handlers see: only `event` (and
    /// `resume`) handlers.
    Quiet,
}

impl Cause {
    /// The plan's handler list this cause's handlers are in.
    pub(crate) fn list(self, r#type: EventType) -> EventType {
        match self {
            Cause::Create => EventType::Added,
            Cause::Update => EventType::Modified,
            Cause::Finalize | Cause::Deleted => EventType::Deleted,
            Cause::Quiet => r#type,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cause::Create => "create",
            Cause::Update => "update",
            Cause::Finalize | Cause::Deleted => "delete",
            Cause::Quiet => "none",
        }
    }

    fn from_name(name: &str) -> Option<Cause> {
        match name {
            "create" => Some(Cause::Create),
            "update" => Some(Cause::Update),
            "delete" => Some(Cause::Finalize),
            _ => None,
        }
    }

    /// Whether `handler` runs for this cause. `resuming`: the object existed before this process
    /// started; `finalized`: its delete handlers ran when its deletion started.
    pub(crate) fn runs(self, handler: &Registration, resuming: bool, finalized: bool) -> bool {
        let Trigger::Event { filter, .. } = handler.trigger else {
            return false;
        };
        match filter {
            EventFilter::Any => true,
            EventFilter::Added => self == Cause::Create,
            EventFilter::Modified => self == Cause::Update,
            EventFilter::Deleted if handler.optional => self == Cause::Deleted,
            EventFilter::Deleted => self == Cause::Finalize || (self == Cause::Deleted && !finalized),
            EventFilter::Resume => resuming,
        }
    }
}

/// How the operator keeps its progress: the store, the finalizer, and the annotations of its
/// own (left out of essences).
#[derive(Clone)]
pub(crate) struct Progress {
    pub(crate) store: Arc<dyn ProgressStore>,
    pub(crate) finalizer: Arc<str>,
    /// `PREFIX/`.
    pub(crate) own_annotations: Arc<str>,
}

impl Progress {
    pub(crate) fn new(store: Arc<dyn ProgressStore>, finalizer: &str, prefix: &str) -> Self {
        let own = store
            .own_annotations()
            .map_or_else(|| format!("{}/", prefix.trim_end_matches('/')), str::to_owned);
        Progress {
            store,
            finalizer: finalizer.into(),
            own_annotations: own.into(),
        }
    }
}

/// What a record says.
#[derive(Default, Debug)]
pub(crate) struct Recorded {
    /// Whether there was a record: the object existed before.
    pub(crate) known: bool,
    /// The essence last handled; `Some(Null)` when only its digest was kept.
    pub(crate) essence: Option<Value>,
    pub(crate) digest: Option<String>,
    pub(crate) pending: Option<Pending>,
}

/// An event's unfinished handlers.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) cause: Cause,
    pub(crate) done: Vec<String>,
    pub(crate) waiting: Option<Waiting>,
    pub(crate) resuming: bool,
}

/// A handler waiting for its next try.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) handler: String,
    pub(crate) retry: u32,
    /// Unix milliseconds.
    pub(crate) at: u64,
}

impl Waiting {
    /// How long until its try, from now (zero if its time has passed).
    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(self.at.saturating_sub(now_millis()))
    }
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl Recorded {
    pub(crate) fn parse(record: &Value) -> Recorded {
        let pending = record.get("pending").and_then(|pending| {
            let cause = Cause::from_name(pending.get("cause")?.as_str()?)?;
            let done = pending
                .get("done")
                .and_then(Value::as_array)
                .map(|done| done.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            let waiting = pending.get("waiting").and_then(|waiting| {
                Some(Waiting {
                    handler: waiting.get("handler")?.as_str()?.to_owned(),
                    retry: u32::try_from(waiting.get("retry")?.as_u64()?).unwrap_or(u32::MAX),
                    at: waiting.get("at")?.as_u64()?,
                })
            });
            Some(Pending {
                cause,
                done,
                waiting,
                resuming: pending.get("resuming").and_then(Value::as_bool).unwrap_or(false),
            })
        });
        Recorded {
            known: true,
            essence: record.get("essence").cloned(),
            digest: record.get("digest").and_then(Value::as_str).map(str::to_owned),
            pending,
        }
    }
}

/// The record of an object handled to the end: its essence.
pub(crate) fn handled(essence: Value) -> Value {
    json!({ "essence": essence })
}

/// The record of an event's unfinished handlers, keeping the essence handled before it.
pub(crate) fn unfinished(previous: Option<&Value>, pending: &Pending) -> Value {
    let mut record = Map::new();
    if let Some(essence) = previous {
        record.insert("essence".to_owned(), essence.clone());
    }
    let mut fields = Map::new();
    fields.insert("cause".to_owned(), pending.cause.name().into());
    fields.insert("done".to_owned(), pending.done.clone().into());
    if let Some(waiting) = &pending.waiting {
        fields.insert(
            "waiting".to_owned(),
            json!({"handler": waiting.handler, "retry": waiting.retry, "at": waiting.at}),
        );
    }
    if pending.resuming {
        fields.insert("resuming".to_owned(), true.into());
    }
    record.insert("pending".to_owned(), Value::Object(fields));
    Value::Object(record)
}

/// Whether the object's deletion has started.
pub(crate) fn being_deleted(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|stamp| !stamp.is_null())
}

fn finalizers(object: &Value) -> impl Iterator<Item = &str> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

pub(crate) fn has_finalizer(object: &Value, finalizer: &str) -> bool {
    finalizers(object).any(|name| name == finalizer)
}

/// Adds `finalizer` to the object's (a merge patch replaces the list whole).
pub(crate) fn add_finalizer(object: &Value, finalizer: &str, patch: &mut Patch) {
    let mut list: Vec<Value> = finalizers(object).map(Value::from).collect();
    list.push(finalizer.into());
    patch.merge(json!({"metadata": {"finalizers": list}}));
}

/// Removes `finalizer` from the object's.
pub(crate) fn remove_finalizer(object: &Value, finalizer: &str, patch: &mut Patch) {
    let list: Vec<Value> = finalizers(object)
        .filter(|&name| name != finalizer)
        .map(Value::from)
        .collect();
    patch.merge(json!({"metadata": {"finalizers": list}}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let pending = Pending {
            cause: Cause::Update,
            done: vec!["a".into()],
            waiting: Some(Waiting {
                handler: "b".into(),
                retry: 2,
                at: 1_000,
            }),
            resuming: true,
        };
        let record = unfinished(Some(&json!({"spec": 1})), &pending);
        let read = Recorded::parse(&record);
        assert_eq!(read.essence, Some(json!({"spec": 1})));
        let read = read.pending.unwrap();
        assert_eq!(
            (read.cause, read.done, read.resuming),
            (Cause::Update, vec!["a".to_owned()], true)
        );
        let waiting = read.waiting.unwrap();
        assert_eq!((waiting.handler.as_str(), waiting.retry, waiting.at), ("b", 2, 1_000));
        assert_eq!(waiting.delay(), Duration::ZERO, "its time has passed");
        assert!(Recorded::parse(&handled(json!({}))).pending.is_none());
    }

    #[test]
    fn finalizers_are_added_and_removed_keeping_the_others() {
        let object = json!({"metadata": {"finalizers": ["other/x"]}});
        let mut patch = Patch::new();
        add_finalizer(&object, DEFAULT_FINALIZER, &mut patch);
        assert_eq!(
            patch.as_value(),
            &json!({"metadata": {"finalizers": ["other/x", DEFAULT_FINALIZER]}})
        );
        let mut held = object.clone();
        patch.apply_to(&mut held);
        assert!(has_finalizer(&held, DEFAULT_FINALIZER));
        let mut patch = Patch::new();
        remove_finalizer(&held, DEFAULT_FINALIZER, &mut patch);
        assert_eq!(patch.as_value(), &json!({"metadata": {"finalizers": ["other/x"]}}));
    }
}
