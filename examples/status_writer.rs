//! An operator that writes back: it keeps each `KopfExample`'s `status` up to date, reacts only
//! to real changes (never to its own status writes), and tells people what it did with
//! Kubernetes Events.
//!
//! ```text
//! # against the cluster of your kubeconfig (kopf's KopfExample CRD installed):
//! cargo run -p memo-examples --features kube --example status_writer
//! ```
//!
//! Each event's handlers' patches are merged and sent once: at most one PATCH of the object and
//! one of its `status` subresource per event.

use memo_runtime::prelude::*;
use serde_json::{Value, json};

#[handler(create = "KopfExample")]
fn created(name: &str, spec: &Value, patch: &mut Patch, recorder: &Recorder) {
    patch.merge(json!({"status": {"phase": "Created", "size": spec["size"].clone()}}));
    recorder.info("Created", format!("{name} is set up"));
}

// Only real changes: not status, not metadata noise (resourceVersion, managedFields).
#[handler(update = "KopfExample")]
fn changed(diff: &Diff, patch: &mut Patch, logger: &Logger) {
    for change in diff.iter() {
        logger.info(format!(
            "{:?} {} {} -> {}",
            change.op(),
            change.path(),
            change.old().unwrap_or(&Value::Null),
            change.new().unwrap_or(&Value::Null)
        ));
    }
    patch.set("/status/phase", "Updated");
}

// This field only: `old` and `new` are its values (null when absent).
#[handler(update = "KopfExample", field = "spec.size")]
fn resized(new: &Value, patch: &mut Patch, recorder: &Recorder) {
    patch.set("/status/size", new.clone());
    recorder.info("Resized", format!("size is now {new}"));
}

// Objects labelled for the web tier only.
#[handler(event = "KopfExample", labels = "tier=web")]
fn web(name: &str, logger: &Logger) {
    logger.info(format!("{name} is a web object"));
}

fn is_big(body: &Value) -> bool {
    body["spec"]["size"].as_u64().unwrap_or(0) > 10
}

// A handler can also act through the client; a failure is retried, and posted as a Warning
// Event on the object.
#[handler(create = "KopfExample", when = is_big, backoff = "1s", retries = 2)]
async fn big(name: &str, client: &memo_runtime::kube::Client) -> memo_runtime::Result<()> {
    use memo_runtime::k8s_openapi::api::core::v1::ConfigMap;
    let config_maps = memo_runtime::kube::Api::<ConfigMap>::default_namespaced(client.clone());
    match config_maps.get_opt("big-quota").await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::custom(format!(
            "{name} is big, and there is no `big-quota` ConfigMap"
        ))),
        Err(err) => Err(Error::custom(format!("cannot read the quota: {err}"))),
    }
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
