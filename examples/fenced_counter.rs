//! Replicas with `--shard auto` whose writes carry the fence of their bucket's lease: each bucket
//! keeps the largest fencing token written to it, and a write from an older holder of the lease
//! (a replica that was cut off, whose write lands after another took the bucket over) is refused
//! and counted as stale instead of applied.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! for i in 0 1 2; do
//!   cargo run -p memo-examples --features redis --example fenced_counter -- \
//!     --source examples/data/kopfexamples.json --redis redis://127.0.0.1:6379/ --shard auto &
//! done; wait
//! ```
//!
//! Every handled event prints `handled NAME N bucket=B token=T at=MILLIS` (its start, Unix
//! milliseconds), so that a test can check that no two replicas handled one bucket at once.

use memo_runtime::prelude::*;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a bucket holds: the largest fencing token written, and how many events were counted.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Bucket {
    token: u64,
    counted: u64,
}

#[handler(event = "KopfExample")]
async fn count(shared: &Shared, fence: Option<Fence>, name: &str, spec: &Value) -> memo_runtime::Result<()> {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let n = spec.get("n").and_then(Value::as_u64).unwrap_or(0);
    let Some(fence) = fence else {
        // Without `--shard auto` there is no lease: count as a plain counter does.
        println!("handled {name} {n} bucket=- token=- at={at}");
        return shared.update("messages", |count: &mut u64| *count += 1).await;
    };
    println!(
        "handled {name} {n} bucket={} token={} at={at}",
        fence.bucket(),
        fence.token()
    );
    let applied = shared
        .update(&format!("bucket-{}", fence.bucket()), |bucket: &mut Bucket| {
            if fence.token() < bucket.token {
                return false;
            }
            bucket.token = fence.token();
            bucket.counted += 1;
            true
        })
        .await?;
    if applied {
        shared.update("messages", |count: &mut u64| *count += 1).await
    } else {
        println!("stale {name} {n} bucket={} token={}", fence.bucket(), fence.token());
        shared.update("stale", |count: &mut u64| *count += 1).await
    }
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
