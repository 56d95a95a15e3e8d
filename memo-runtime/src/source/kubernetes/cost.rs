//! What the source does per object, timed against what it did before issue 18 (kube's
//! `DynamicObject`, its `ObjectMeta` turned back into JSON, a deep copy kept per object, a
//! second identity scheme), side by side in one process. Ignored by default:
//!
//! ```text
//! cargo test --release -p memo-runtime --all-features --lib -- --ignored --nocapture cost_per_object
//! ```

use super::bookkeeping::{Bookkeeping, Change};
use super::object::Object;
use super::watch::complete;
use crate::api::event::metadata_str;
use crate::api::event::{Event, EventType};
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const OBJECTS: usize = 10_000;
const ROUNDS: usize = 7;

/// An object as a real cluster sends it: labels, annotations, managed fields, an owner.
fn sent(index: usize, version: u32) -> Vec<u8> {
    let fields = json!({
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                       "f:labels": {".": {}, "f:app": {}, "f:tier": {}, "f:release": {}}},
        "f:spec": {".": {}, "f:replicas": {}, "f:image": {}, "f:ports": {}}
    });
    let object = json!({
        "metadata": {
            "name": format!("ex{index}"), "namespace": "default",
            "uid": format!("6f1c3b2a-0000-4000-8000-{index:012}"),
            "resourceVersion": version.to_string(), "generation": 3,
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "labels": {"app": "shop", "tier": "backend", "release": "stable", "team": "payments"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"apiVersion\":\"kopf.dev/v1\",\"kind\":\"KopfExample\",\"metadata\":{{\"name\":\"ex{index}\",\"namespace\":\"default\"}},\"spec\":{{\"replicas\":3}}}}"),
                "deployment.kubernetes.io/revision": "7"
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-5d9c",
                                 "uid": "0c9a7f54-1111-4222-8333-444455556666", "controller": true}],
            "finalizers": ["kopf.dev/finalizer"],
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "apiVersion": "kopf.dev/v1",
                 "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields.clone()},
                {"manager": "shop-controller", "operation": "Update", "apiVersion": "kopf.dev/v1",
                 "time": "2026-11-20T10:05:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields}
            ]
        },
        "spec": {"replicas": 3, "image": "shop:1.4.2", "ports": [8080, 8443]},
        "status": {"phase": "Running", "replicas": 3}
    });
    serde_json::to_vec(&object).unwrap()
}

fn resource() -> ApiResource {
    ApiResource {
        group: "kopf.dev".to_owned(),
        version: "v1".to_owned(),
        api_version: "kopf.dev/v1".to_owned(),
        kind: "KopfExample".to_owned(),
        plural: "kopfexamples".to_owned(),
    }
}

/// The source before: `watch.rs`'s `complete` and `bookkeeping.rs`'s `apply` as they were.
#[derive(Default)]
struct Before {
    known: HashMap<Box<str>, (Box<str>, Value), ahash::RandomState>,
}

impl Before {
    fn complete(resource: &ApiResource, object: DynamicObject) -> Value {
        let mut fields = match object.data {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        fields.insert("apiVersion".to_owned(), Value::String(resource.api_version.clone()));
        fields.insert("kind".to_owned(), Value::String(resource.kind.clone()));
        fields.insert("metadata".to_owned(), serde_json::to_value(&object.metadata).unwrap());
        Value::Object(fields)
    }

    fn apply(&mut self, object: Value, events: &mut VecDeque<Event>) {
        let identity: Box<str> = match metadata_str(&object, "uid") {
            Some(uid) => uid.into(),
            None => format!(
                "{}/{}",
                metadata_str(&object, "namespace").unwrap_or(""),
                metadata_str(&object, "name").unwrap_or("")
            )
            .into(),
        };
        let version = metadata_str(&object, "resourceVersion").unwrap_or("");
        let r#type = match self.known.get_mut(&identity) {
            Some(known) if &*known.0 == version => return,
            Some(known) => {
                known.0 = version.into();
                known.1 = object.clone();
                EventType::Modified
            }
            None => {
                self.known.insert(identity, (version.into(), object.clone()));
                EventType::Added
            }
        };
        events.push_back(Event::new(r#type, object));
    }
}

/// Each pass: the time to take every document of `documents` in, its events then dropped (as
/// the dispatcher drops them once handled).
fn before(resource: &ApiResource, passes: &[Vec<Vec<u8>>]) -> Vec<Duration> {
    let mut book = Before::default();
    let mut events = VecDeque::new();
    passes
        .iter()
        .map(|documents| {
            let start = Instant::now();
            for document in documents {
                let object: DynamicObject = serde_json::from_slice(document).unwrap();
                book.apply(Before::complete(resource, object), &mut events);
                events.clear();
            }
            start.elapsed()
        })
        .collect()
}

fn after(resource: &ApiResource, passes: &[Vec<Vec<u8>>]) -> Vec<Duration> {
    let mut book = Bookkeeping::default();
    let mut events = VecDeque::new();
    passes
        .iter()
        .map(|documents| {
            let start = Instant::now();
            for document in documents {
                let object: Object = serde_json::from_slice(document).unwrap();
                book.record(Change::Applied(complete(resource, object)), &mut events);
                events.clear();
            }
            start.elapsed()
        })
        .collect()
}

fn median(mut figures: Vec<Duration>) -> Duration {
    figures.sort();
    figures[figures.len() / 2]
}

#[test]
#[ignore = "a measurement: run it in release, with --ignored --nocapture"]
fn cost_per_object_before_and_after() {
    let resource = resource();
    // First sight (ADDED), a change (MODIFIED), the same again (a relist: no event).
    let passes: Vec<Vec<Vec<u8>>> = [1, 2, 2]
        .into_iter()
        .map(|version| (0..OBJECTS).map(|index| sent(index, version)).collect())
        .collect();
    let (mut old, mut new) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
    for _ in 0..ROUNDS {
        for (pass, figure) in before(&resource, &passes).into_iter().enumerate() {
            old[pass].push(figure);
        }
        for (pass, figure) in after(&resource, &passes).into_iter().enumerate() {
            new[pass].push(figure);
        }
    }
    let bytes = passes[0].iter().map(Vec::len).sum::<usize>() / OBJECTS;
    println!("{OBJECTS} objects of {bytes} bytes, median of {ROUNDS} rounds, µs per object (before -> after):");
    for (pass, name) in ["ADDED", "MODIFIED", "relisted unchanged"].into_iter().enumerate() {
        let per = |figures: &[Duration]| median(figures.to_vec()).as_secs_f64() * 1e6 / OBJECTS as f64;
        let (old, new) = (per(&old[pass]), per(&new[pass]));
        println!(
            "  {name:<20} {old:6.2} -> {new:6.2}  ({:+.0}%)",
            (new / old - 1.0) * 100.0
        );
    }
}
