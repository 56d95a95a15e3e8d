//! Every filter, and every injectable that reads the object or what changed, in sync and async
//! handlers.
#![deny(warnings)]

use memo_runtime::prelude::*;
use serde_json::Value;

fn is_big(body: &Value) -> bool {
    body["spec"]["size"].as_u64().unwrap_or(0) > 10
}

mod filters {
    pub fn ready(body: &serde_json::Value) -> bool {
        body["status"]["phase"] == "Ready"
    }
}

#[handler(event = "KopfExample", labels = "tier=web,env in (prod,staging),!legacy")]
fn web(name: &str, labels: &Labels, annotations: &Annotations) {
    let _ = (name, labels.get("tier"), annotations.len());
}

#[handler(create = "KopfExample", when = is_big, annotations = "memo.dev/managed")]
async fn big(spec: &Value, status: &Value) {
    let _ = (spec["size"].as_u64(), status.is_null());
}

#[handler(delete = "KopfExample", when = filters::ready)]
fn gone(_labels: &Labels) {}

#[handler(update = "KopfExample")]
fn changed(diff: &Diff, old: &Value, new: &Value) {
    for change in diff.iter() {
        let _ = (change.op(), change.path(), change.old(), change.new(), old, new);
    }
}

#[handler(update = "KopfExample", field = "spec.replicas", labels = "tier")]
async fn scaled(old: &Value, new: &Value, diff: &Diff, labels: &Labels<'_>) {
    tokio::task::yield_now().await;
    let _ = (old, new, diff.is_empty(), labels.is_empty());
}

#[handler(timer = "KopfExample", interval = 10, labels = "tier=web", when = is_big)]
fn tick(spec: &Value, labels: &Labels) {
    let _ = (spec, labels);
}

fn main() {}
