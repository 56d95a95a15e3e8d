//! Kubernetes Events about a handler's object, as kopf's `kopf.info` / `kopf.warn` post them.
//!
//! A handler must not wait for the API server to tell people what it did, and a failed Event
//! must not fail the handler: a [`Recorder`] hands each note to a sink that queues it and posts
//! it in the background (best effort). Without a cluster there is no sink, and notes are logged.

use serde_json::{Map, Value};
use std::sync::Arc;

/// How serious a note is: Kubernetes Events are `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Normal,
    Warning,
}

/// One Event to post about an object.
#[derive(Clone, Debug)]
// Read by the cluster's sink only (feature `kube`).
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
pub(crate) struct Note {
    pub(crate) severity: Severity,
    pub(crate) reason: String,
    pub(crate) message: String,
}

/// Where notes go when the operator runs against a cluster: queued, never waited for.
pub(crate) trait EventSink: Send + Sync {
    /// Queues `note` about the object whose body is `object`.
    fn post(&self, object: &Value, note: Note);
}

/// Posts Kubernetes Events about an object. Usable from sync and async code alike: nothing
/// waits for the API server, and a failure to post is logged, never the caller's failure.
/// Without a cluster the notes are logged with the object named. A handler asks for one with
/// `recorder: &Recorder`.
///
/// ```
/// use memo_runtime::prelude::*;
///
/// fn created(name: &str, recorder: &Recorder) {
///     recorder.info("Created", format!("{name} is set up"));
/// }
/// let object = serde_json::json!({"kind": "KopfExample", "metadata": {"name": "e1"}});
/// created("e1", &Recorder::logging(&object));
/// ```
///
/// It owns what names its object (kind, API version, namespace, name, uid, resource version),
/// not the object: `recorder: &Recorder` needs no lifetime, in async handlers too.
#[derive(Clone)]
pub struct Recorder {
    object: Value,
    sink: Option<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("kind", &self.object.get("kind"))
            .field("metadata.name", &self.object.pointer("/metadata/name"))
            .field("posts", &self.sink.is_some())
            .finish()
    }
}

impl Recorder {
    /// A recorder that only logs its notes, for `object` (only what names it is kept): what
    /// handlers get without a cluster, and what a unit test of a handler can pass it.
    ///
    /// ```
    /// let object = serde_json::json!({"kind": "KopfExample", "metadata": {"name": "e1"}});
    /// let recorder = memo_runtime::Recorder::logging(&object);
    /// recorder.warning("Slow", "the backend took 3 s");
    /// ```
    pub fn logging(object: &Value) -> Self {
        Recorder {
            object: identity(object),
            sink: None,
        }
    }

    /// A recorder posting through `sink`.
    pub(crate) fn posting(object: &Value, sink: Arc<dyn EventSink>) -> Self {
        Recorder {
            object: identity(object),
            sink: Some(sink),
        }
    }

    /// Posts a `Normal` Event: `reason` is a short CamelCase word (`Created`), `message` says
    /// what happened.
    pub fn info(&self, reason: &str, message: impl Into<String>) {
        self.note(Severity::Normal, reason, message.into());
    }

    /// Posts a `Warning` Event.
    pub fn warning(&self, reason: &str, message: impl Into<String>) {
        self.note(Severity::Warning, reason, message.into());
    }

    fn note(&self, severity: Severity, reason: &str, message: String) {
        match &self.sink {
            Some(sink) => sink.post(
                &self.object,
                Note {
                    severity,
                    reason: reason.to_owned(),
                    message,
                },
            ),
            None => {
                let kind = self.object.get("kind").and_then(Value::as_str).unwrap_or_default();
                let name = self
                    .object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match severity {
                    Severity::Normal => {
                        tracing::info!(target: "memo", kind, name, reason, "event: {reason}: {message}")
                    }
                    Severity::Warning => {
                        tracing::warn!(target: "memo", kind, name, reason, "event: {reason}: {message}")
                    }
                }
            }
        }
    }
}

/// What names `object`, as an Event refers to it.
fn identity(object: &Value) -> Value {
    let mut kept = Map::new();
    for field in ["apiVersion", "kind"] {
        if let Some(value) = object.get(field) {
            kept.insert(field.to_owned(), value.clone());
        }
    }
    if let Some(metadata) = object.get("metadata") {
        let mut names = Map::new();
        for field in ["name", "namespace", "uid", "resourceVersion"] {
            if let Some(value) = metadata.get(field) {
                names.insert(field.to_owned(), value.clone());
            }
        }
        kept.insert("metadata".to_owned(), Value::Object(names));
    }
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Kept(Mutex<Vec<(String, Severity, String, String)>>);

    impl EventSink for Kept {
        fn post(&self, object: &Value, note: Note) {
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            self.0
                .lock()
                .unwrap()
                .push((name, note.severity, note.reason, note.message));
        }
    }

    #[test]
    fn notes_go_to_the_sink_with_their_object_and_severity() {
        let object = json!({"kind": "KopfExample", "metadata": {"name": "e1"}});
        let kept = Arc::new(Kept::default());
        let recorder = Recorder::posting(&object, kept.clone());
        recorder.info("Created", "e1 is set up");
        recorder.warning("Slow", String::from("3 s"));
        assert_eq!(
            *kept.0.lock().unwrap(),
            [
                (
                    "e1".to_owned(),
                    Severity::Normal,
                    "Created".to_owned(),
                    "e1 is set up".to_owned()
                ),
                ("e1".to_owned(), Severity::Warning, "Slow".to_owned(), "3 s".to_owned()),
            ]
        );
        assert!(format!("{recorder:?}").contains("posts: true"));
        assert!(format!("{:?}", Recorder::logging(&object)).contains("posts: false"));
    }
}
