//! Where memo keeps its progress on each object, so that a restarted operator runs no handler
//! twice and misses no change: the [`ProgressStore`] trait, the object's own annotations
//! ([`AnnotationsProgress`], the default) and a shared-memory store ([`SharedProgress`]).
//!
//! A record is a JSON object (its layout is the runtime's; stores keep it whole):
//!
//! - `"essence"`: the object's essence as last handled (what the next `update`'s `diff` starts
//!   from), or `"digest"`: a digest of it when it is too large to keep;
//! - `"pending"`: an event's unfinished handlers — `"cause"` (`create`, `update`, `delete`),
//!   `"done"` (the ids of those that ran), `"waiting"` (`[{"handler", "retry", "at"}]`: the
//!   attempt count and the time, in Unix milliseconds, of the next try) and `"resuming"`.

use crate::api::error::Result;
use crate::api::patch::Patch;
use crate::store::{MemoryId, StoreFuture, StoreRef};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The default prefix of the annotations memo keeps its progress in (`memo.dev/last-handled`,
/// `memo.dev/progress`); see `Operator::progress_prefix`.
pub const DEFAULT_PROGRESS_PREFIX: &str = "memo.dev";

/// The API server's limit on all of an object's annotations together.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// Where memo keeps what it has handled of each object.
///
/// `key` names the object (its uid, or without one its kind, namespace and name); `object` is
/// the object itself, for a store that keeps the record on it.
pub trait ProgressStore: Send + Sync + 'static {
    /// How logs name the store.
    fn describe(&self) -> String;

    /// The record kept for `object`, if any.
    fn read<'a>(&'a self, object: &'a Value, key: &'a str) -> StoreFuture<'a, Option<Value>>;

    /// Keeps `record` for `object` (`None`: forgets it): at once, or by adding it to `patch`,
    /// which the runtime writes to the object with the handlers' own changes, in one request.
    fn write<'a>(
        &'a self,
        object: &'a Value,
        key: &'a str,
        record: Option<Value>,
        patch: &'a mut Patch,
    ) -> StoreFuture<'a, ()>;

    /// Whether the essences of `object`'s records must be kept out of the object's essence: its
    /// annotations under this prefix (with a `/`) are the store's own.
    fn own_annotations(&self) -> Option<&str> {
        None
    }
}

/// A digest of an essence: what is kept instead of an essence too large to keep.
pub(crate) fn digest(essence: &Value) -> String {
    format!("{:016x}", crate::api::shard::stable_hash(&essence.to_string()))
}

/// The progress on the object itself, in two annotations under a prefix (default
/// [`DEFAULT_PROGRESS_PREFIX`]): `PREFIX/last-handled` (the essence as JSON, or
/// `PREFIX/last-handled-digest` when the essence would not fit the API server's 256 KiB limit
/// on annotations) and `PREFIX/progress` (an event's unfinished handlers).
///
/// ```
/// use memo_runtime::store::{AnnotationsProgress, ProgressStore};
///
/// let store = AnnotationsProgress::new("example.com");
/// assert_eq!(store.own_annotations(), Some("example.com/"));
/// ```
#[derive(Clone, Debug)]
pub struct AnnotationsProgress {
    /// `PREFIX/`.
    prefix: String,
}

impl AnnotationsProgress {
    /// Keeps the progress in annotations under `prefix` (`example.com` → `example.com/progress`).
    pub fn new(prefix: &str) -> Self {
        AnnotationsProgress {
            prefix: format!("{}/", prefix.trim_end_matches('/')),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl ProgressStore for AnnotationsProgress {
    fn describe(&self) -> String {
        format!("annotations {}*", self.prefix)
    }

    fn read<'a>(&'a self, object: &'a Value, _: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(std::future::ready(Ok(self.read_now(object))))
    }

    fn write<'a>(
        &'a self,
        object: &'a Value,
        _: &'a str,
        record: Option<Value>,
        patch: &'a mut Patch,
    ) -> StoreFuture<'a, ()> {
        self.write_now(object, record, patch);
        Box::pin(std::future::ready(Ok(())))
    }

    fn own_annotations(&self) -> Option<&str> {
        Some(&self.prefix)
    }
}

impl AnnotationsProgress {
    fn read_now(&self, object: &Value) -> Option<Value> {
        let annotations = object.pointer("/metadata/annotations")?.as_object()?;
        let text = |name: &str| annotations.get(&self.key(name)).and_then(Value::as_str);
        let mut record = Map::new();
        let parsed = |name: &str, text: &str| match serde_json::from_str::<Value>(text) {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::warn!(target: "memo", "the annotation {} is not JSON ({err}): ignored", self.key(name));
                None
            }
        };
        if let Some(essence) = text("last-handled").and_then(|text| parsed("last-handled", text)) {
            record.insert("essence".to_owned(), essence);
        } else if let Some(digest) = text("last-handled-digest") {
            record.insert("digest".to_owned(), Value::String(digest.to_owned()));
        }
        if let Some(pending) = text("progress").and_then(|text| parsed("progress", text)) {
            record.insert("pending".to_owned(), pending);
        }
        (!record.is_empty()).then_some(Value::Object(record))
    }

    fn write_now(&self, object: &Value, record: Option<Value>, patch: &mut Patch) {
        let record = record.unwrap_or(Value::Null);
        let mut annotations = Map::new();
        let old = |name: &str| {
            object
                .pointer("/metadata/annotations")
                .and_then(|annotations| annotations.get(self.key(name)))
                .and_then(Value::as_str)
        };
        let mut set = |name: &str, value: Option<String>| {
            // Only what changes: a record written again as it is costs nothing in the patch.
            if old(name) != value.as_deref() {
                annotations.insert(self.key(name), value.map_or(Value::Null, Value::String));
            }
        };
        let essence = record.get("essence").map(Value::to_string);
        let others: usize = object
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|annotations| {
                annotations
                    .iter()
                    .filter(|(key, _)| !key.starts_with(&self.prefix))
                    .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
                    .sum()
            })
            .unwrap_or(0);
        let pending = record
            .get("pending")
            .filter(|pending| !pending.is_null())
            .map(Value::to_string);
        let room = ANNOTATIONS_LIMIT
            .saturating_sub(others)
            .saturating_sub(pending.as_ref().map_or(0, |text| text.len() + 64))
            .saturating_sub(256);
        match (essence, record.get("digest").and_then(Value::as_str)) {
            (Some(text), _) if text.len() <= room => {
                set("last-handled", Some(text));
                set("last-handled-digest", None);
            }
            (Some(text), _) => {
                warn_too_large(object, text.len());
                let digest = record.get("essence").map(digest).unwrap_or_default();
                set("last-handled", None);
                set("last-handled-digest", Some(digest));
            }
            (None, Some(digest)) => {
                set("last-handled", None);
                set("last-handled-digest", Some(digest.to_owned()));
            }
            (None, None) => {
                set("last-handled", None);
                set("last-handled-digest", None);
            }
        }
        set("progress", pending);
        if !annotations.is_empty() {
            patch.merge(json!({"metadata": {"annotations": annotations}}));
        }
    }
}

/// Says once per object and process that its essence is too large to keep.
fn warn_too_large(object: &Value, bytes: usize) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let who = format!(
        "{}/{}/{}",
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    );
    let mut warned = WARNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if warned.len() > 4096 {
        warned.clear();
    }
    if warned.insert(who) {
        tracing::warn!(
            target: "memo",
            kind = text("/kind"),
            namespace = text("/metadata/namespace"),
            name = text("/metadata/name"),
            "the object's essence ({bytes} bytes) does not fit its annotations: memo keeps a digest of it; \
             after a restart, an `update` of this object gets `old` = null"
        );
    }
}

/// The progress in the operator's shared-memory store (e.g. Redis), under the bot's name: for
/// objects the operator may not annotate, and for sources that are not a cluster (a
/// `kubectl --watch` stream), which then become restart-safe too. `--progress-store shared`.
#[derive(Clone)]
pub struct SharedProgress {
    store: StoreRef,
    memory: MemoryId,
}

impl SharedProgress {
    /// The component of the bot's memory the records are kept in.
    pub const COMPONENT: &'static str = "memo.progress";

    pub(crate) fn new(store: StoreRef, bot: &str) -> Self {
        SharedProgress {
            store,
            memory: MemoryId::new(bot, Some(Self::COMPONENT)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Value>> {
        let versioned = match &self.store {
            StoreRef::InProcess(store) => crate::store::Store::get(store, &self.memory, key).await?,
            StoreRef::Dyn(store) => store.get(&self.memory, key).await?,
        };
        Ok(versioned.map(|versioned| versioned.value))
    }

    async fn put(&self, key: &str, record: Option<Value>) -> Result<()> {
        match (&self.store, record) {
            (StoreRef::InProcess(store), Some(record)) => {
                crate::store::Store::set(store, &self.memory, key, record).await
            }
            (StoreRef::Dyn(store), Some(record)) => store.set(&self.memory, key, record).await,
            (StoreRef::InProcess(store), None) => crate::store::Store::remove(store, &self.memory, key).await.map(drop),
            (StoreRef::Dyn(store), None) => store.remove(&self.memory, key).await.map(drop),
        }
    }
}

impl std::fmt::Debug for SharedProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProgress")
            .field("store", &self.store)
            .field("memory", &self.memory)
            .finish()
    }
}

impl ProgressStore for SharedProgress {
    fn describe(&self) -> String {
        format!("{:?} ({})", self.store, self.memory)
    }

    fn read<'a>(&'a self, _: &'a Value, key: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(self.get(key))
    }

    fn write<'a>(&'a self, _: &'a Value, key: &'a str, record: Option<Value>, _: &'a mut Patch) -> StoreFuture<'a, ()> {
        Box::pin(self.put(key, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(annotations: Value) -> Value {
        json!({"kind": "KopfExample", "metadata": {"name": "e1", "namespace": "default", "annotations": annotations}})
    }

    #[test]
    fn annotations_round_trip_and_only_changes_are_patched() {
        let store = AnnotationsProgress::new("memo.dev");
        let record = json!({"essence": {"spec": {"size": 1}}, "pending": {"cause": "create", "done": ["a"]}});
        let mut patch = Patch::new();
        store.write_now(&object(json!({"other": "x"})), Some(record.clone()), &mut patch);
        let written = patch.as_value()["metadata"]["annotations"].clone();
        assert_eq!(written["memo.dev/last-handled"], r#"{"spec":{"size":1}}"#);
        assert!(
            written.get("memo.dev/last-handled-digest").is_none(),
            "nothing to remove: {written}"
        );
        let mut annotated = object(json!({"other": "x"}));
        patch.apply_to(&mut annotated);
        assert_eq!(store.read_now(&annotated), Some(record.clone()));
        let mut again = Patch::new();
        store.write_now(&annotated, Some(record), &mut again);
        assert!(again.is_empty(), "{again:?}");
        let mut finished = Patch::new();
        store.write_now(
            &annotated,
            Some(json!({"essence": {"spec": {"size": 1}}})),
            &mut finished,
        );
        assert_eq!(
            finished.as_value(),
            &json!({"metadata": {"annotations": {"memo.dev/progress": null}}})
        );
    }

    #[test]
    fn an_essence_too_large_is_kept_as_its_digest() {
        let store = AnnotationsProgress::new("memo.dev/");
        let essence = json!({"spec": {"blob": "x".repeat(300 * 1024)}});
        let mut patch = Patch::new();
        store.write_now(&object(json!({})), Some(json!({"essence": essence})), &mut patch);
        let written = &patch.as_value()["metadata"]["annotations"];
        assert!(
            written.get("memo.dev/last-handled").is_none(),
            "nothing was there to remove"
        );
        assert_eq!(written["memo.dev/last-handled-digest"], digest(&essence).as_str());
        let mut annotated = object(json!({}));
        patch.apply_to(&mut annotated);
        assert_eq!(store.read_now(&annotated), Some(json!({"digest": digest(&essence)})));
    }
}
