#![deny(warnings)]

use memo_runtime::prelude::*;
use serde_json::{Value, json};

#[handler(create = "KopfExample")]
fn created(name: &str, spec: &Value, patch: &mut Patch, recorder: &Recorder) {
    patch.merge(json!({"status": {"phase": "Created", "size": spec["size"].clone()}}));
    recorder.info("Created", format!("{name} is set up"));
}

#[handler(update = "KopfExample")]
fn changed(diff: &Diff, patch: &mut Patch) {
    if !diff.is_empty() {
        patch.set("/status/phase", "Updated");
    }
}

#[handler(delete = "KopfExample")]
async fn deleted(recorder: &Recorder) {
    recorder.warning("Deleted", "gone");
}

#[handler(event = "KopfExample")]
fn seen(_patch: &mut Patch) {}

#[handler(timer = "KopfExample", interval = "10s")]
fn checked(status: &Value, patch: &mut Patch, recorder: &Recorder) {
    if status.is_null() {
        patch.remove("/status/stale");
        recorder.info("Checked", "no status yet");
    }
}

fn main() {}
