//! Resource events: what a source yields and what event handlers receive.

use serde_json::Value;
use std::sync::Arc;

/// What happened to a resource, as in a Kubernetes watch stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The resource appeared (kopf's "create" cause).
    Added,
    /// The resource changed (kopf's "update" cause).
    Modified,
    /// The resource is gone (kopf's "delete" cause); its memo is dropped afterwards.
    Deleted,
}

impl EventType {
    /// Every event type, in the order of [`EventType::index`].
    pub(crate) const ALL: [EventType; 3] = [EventType::Added, EventType::Modified, EventType::Deleted];

    /// Its position in [`EventType::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The name Kubernetes uses for this type in watch streams: `ADDED`, `MODIFIED`, `DELETED`.
    ///
    /// ```
    /// use memo_runtime::EventType;
    /// assert_eq!(EventType::Added.as_str(), "ADDED");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }

    /// Parses a watch-stream type name; `None` for anything else (`BOOKMARK`, `ERROR`, typos).
    ///
    /// ```
    /// use memo_runtime::EventType;
    /// assert_eq!(EventType::parse("MODIFIED"), Some(EventType::Modified));
    /// assert_eq!(EventType::parse("BOOKMARK"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ADDED" => Some(EventType::Added),
            "MODIFIED" => Some(EventType::Modified),
            "DELETED" => Some(EventType::Deleted),
            _ => None,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One watch event: its type and the object as it is after the event.
///
/// ```
/// use memo_runtime::{Event, EventType};
/// let event = Event::added(serde_json::json!({
///     "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
///     "metadata": {"name": "ex1", "namespace": "default", "uid": "u-1"}
/// }));
/// assert_eq!(event.r#type, EventType::Added);
/// assert_eq!(event.kind(), Some("KopfExample"));
/// assert_eq!(event.name(), Some("ex1"));
/// assert_eq!(event.namespace(), Some("default"));
/// assert_eq!(event.uid(), Some("u-1"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub r#type: EventType,
    /// The resource object (`apiVersion`, `kind`, `metadata`, `spec`, ...). Shared, so that a
    /// source that keeps the object too (the Kubernetes source keeps each object's last
    /// version) does not copy it; it reads as a `Value` (`event.object["spec"]`, `&event.object`
    /// where a `&Value` is expected).
    pub object: Arc<Value>,
}

impl Event {
    /// An event of the given type.
    pub fn new(r#type: EventType, object: Value) -> Self {
        Event::shared(r#type, Arc::new(object))
    }

    /// An event of the given type whose object is shared with its source.
    pub fn shared(r#type: EventType, object: Arc<Value>) -> Self {
        Event { r#type, object }
    }

    /// An `ADDED` event.
    pub fn added(object: Value) -> Self {
        Event::new(EventType::Added, object)
    }

    /// A `MODIFIED` event.
    pub fn modified(object: Value) -> Self {
        Event::new(EventType::Modified, object)
    }

    /// A `DELETED` event.
    pub fn deleted(object: Value) -> Self {
        Event::new(EventType::Deleted, object)
    }

    /// The object's `kind`.
    pub fn kind(&self) -> Option<&str> {
        self.object.get("kind")?.as_str()
    }

    /// The object's `apiVersion` (`"kopf.dev/v1"`, or `"v1"` for the core group).
    pub fn api_version(&self) -> Option<&str> {
        self.object.get("apiVersion")?.as_str()
    }

    /// The object's `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        metadata_str(&self.object, "name")
    }

    /// The object's `metadata.namespace`; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        metadata_str(&self.object, "namespace")
    }

    /// The object's `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        metadata_str(&self.object, "uid")
    }
}

pub(crate) fn metadata_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}
