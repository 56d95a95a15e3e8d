//! Handlers that survive restarts: each runs once per object, not once per process; a change
//! made while the operator was down reaches `update` with what changed; a deletion while it was
//! down still runs the `delete` handler (a finalizer holds the object); `resume` runs once per
//! existing object at each start.
//!
//! ```text
//! # against the cluster of your kubeconfig (progress kept in annotations on the objects):
//! cargo run -p memo-examples --features kube --example restart_safe
//! # from a watch stream, progress kept in Redis:
//! cargo run -p memo-examples --features redis --example restart_safe -- \
//!     --source - --redis redis://127.0.0.1:6379/ --progress-store shared
//! ```

use memo_runtime::prelude::*;
use serde_json::Value;

#[handler(create = "KopfExample")]
fn provision(name: &str, retry: u32, logger: &Logger) {
    logger.info(format!("provisioned {name} (retry {retry})"));
}

#[handler(update = "KopfExample")]
fn reconfigure(name: &str, diff: &Diff, logger: &Logger) {
    for change in diff.iter() {
        logger.info(format!(
            "reconfigured {name}: {:?} {} -> {}",
            change.op(),
            change.path(),
            change.new().unwrap_or(&Value::Null)
        ));
    }
}

// Holds a finalizer: runs even if the operator was down when the object was deleted.
#[handler(delete = "KopfExample")]
fn deprovision(name: &str, logger: &Logger) {
    logger.info(format!("deprovisioned {name}"));
}

// No finalizer: best effort, on `DELETED`.
#[handler(delete = "ConfigMap", optional)]
fn forget(name: &str, logger: &Logger) {
    logger.info(format!("forgot {name}"));
}

// Once per existing object per process start.
#[handler(resume = "KopfExample")]
fn reattach(name: &str, memo: &mut Memo, logger: &Logger) {
    memo.insert("attached", true);
    logger.info(format!("reattached {name}"));
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
