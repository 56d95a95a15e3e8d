//! Posting handlers' notes as Kubernetes Events, through kube-runtime's `events::Recorder`
//! (which also folds repeats into a series), from a background task: a handler only queues.

use crate::api::recorder::{EventSink, Note, Severity};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// How many notes may wait to be posted; beyond it new ones are dropped (logged at debug): Events
/// are best effort, and a slow API server must not grow memory.
const QUEUE: usize = 1024;

/// A sink that posts notes to the cluster.
pub(crate) struct KubeEvents {
    queue: mpsc::Sender<(ObjectReference, Event)>,
    /// Who reports the Events, named before the first is posted.
    controller: Arc<OnceLock<String>>,
}

impl KubeEvents {
    /// Starts the posting task, reporting from `instance` (the pod's name, if known) as the
    /// controller [`named`](Self::report_as) before the first note (or `default_controller`).
    /// It ends when the sink is dropped.
    pub(crate) fn start(client: Client, default_controller: &str, instance: Option<String>) -> Self {
        let (queue, mut queued) = mpsc::channel::<(ObjectReference, Event)>(QUEUE);
        let controller = Arc::new(OnceLock::new());
        let (named, default_controller) = (Arc::clone(&controller), default_controller.to_owned());
        tokio::spawn(async move {
            let mut recorder = None;
            while let Some((reference, event)) = queued.recv().await {
                let recorder = recorder.get_or_insert_with(|| {
                    let controller = named.get().cloned().unwrap_or(default_controller.clone());
                    Recorder::new(
                        client.clone(),
                        Reporter {
                            controller,
                            instance: instance.clone(),
                        },
                    )
                });
                if let Err(err) = recorder.publish(&event, &reference).await {
                    tracing::warn!(
                        target: "memo",
                        kind = reference.kind.as_deref().unwrap_or_default(),
                        name = reference.name.as_deref().unwrap_or_default(),
                        reason = event.reason,
                        "cannot post the Event {:?}: {err}",
                        event.reason
                    );
                }
            }
        });
        KubeEvents { queue, controller }
    }

    /// Names the controller the Events are reported by (the operator's name); only the first
    /// name counts.
    pub(crate) fn report_as(&self, controller: &str) {
        let _ = self.controller.set(controller.to_owned());
    }
}

impl EventSink for KubeEvents {
    fn post(&self, object: &Value, note: Note) {
        let reference = reference(object);
        let event = Event {
            type_: match note.severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: note.reason,
            note: Some(note.message),
            action: "Handling".to_owned(),
            secondary: None,
        };
        if let Err(mpsc::error::TrySendError::Full((reference, event))) = self.queue.try_send((reference, event)) {
            tracing::debug!(
                target: "memo",
                name = reference.name.as_deref().unwrap_or_default(),
                "{QUEUE} Events wait to be posted: {:?} dropped",
                event.reason
            );
        }
    }
}

/// The reference an Event names its object by.
fn reference(object: &Value) -> ObjectReference {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    ObjectReference {
        api_version: text("/apiVersion"),
        kind: text("/kind"),
        name: text("/metadata/name"),
        namespace: text("/metadata/namespace"),
        uid: text("/metadata/uid"),
        resource_version: text("/metadata/resourceVersion"),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::reference;
    use serde_json::json;

    #[test]
    fn the_reference_names_the_object() {
        let object = json!({"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
            "metadata": {"name": "e1", "namespace": "default", "uid": "u1", "resourceVersion": "7"}});
        let reference = reference(&object);
        assert_eq!(reference.api_version.as_deref(), Some("kopf.dev/v1"));
        assert_eq!(reference.kind.as_deref(), Some("KopfExample"));
        assert_eq!(reference.name.as_deref(), Some("e1"));
        assert_eq!(reference.namespace.as_deref(), Some("default"));
        assert_eq!(reference.uid.as_deref(), Some("u1"));
        assert_eq!(reference.resource_version.as_deref(), Some("7"));
    }
}

#[cfg(test)]
mod posting {
    use super::KubeEvents;
    use crate::api::recorder::Recorder;
    use crate::source::kubernetes::fake_api;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn a_note_becomes_a_kubernetes_event_about_its_object() {
        let fake = fake_api::FakeApi::new();
        fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
        let uid = fake.create("kopfexamples", Some("default"), "e1", json!({}));
        let object = fake.object("kopfexamples", Some("default"), "e1").unwrap();
        let sink = KubeEvents::start(fake.client(), "memo-test", Some("pod-0".into()));
        Recorder::posting(&object, std::sync::Arc::new(sink)).warning("Failed", "the backend said no");
        let mut events = Vec::new();
        for _ in 0..200 {
            events = fake.events();
            if !events.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let [event] = events.as_slice() else {
            panic!("one Event: {events:?}")
        };
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "Failed");
        assert_eq!(event["note"], "the backend said no");
        assert_eq!(event["regarding"]["name"], "e1");
        assert_eq!(event["regarding"]["uid"], uid.as_str());
        assert_eq!(event["reportingController"], "memo-test");
    }
}
