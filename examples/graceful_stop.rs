//! What a stop does to handlers that take long. A `Sleeper` asks its handlers to block a thread
//! (`spec.blockSeconds`, a sync handler) or to wait (`spec.waitSeconds`, an async one). Stop the
//! operator with Ctrl-C or `kill -TERM`: no new event starts, the running handlers get
//! `--shutdown-timeout` to finish, then they are abandoned and named in the log, the cleanup
//! handler runs, and the process exits. A second signal stops it at once.
//!
//! ```text
//! echo '{"type": "ADDED", "object": {"apiVersion": "memo.dev/v1", "kind": "Sleeper",
//!   "metadata": {"name": "s1", "namespace": "default"}, "spec": {"blockSeconds": 600}}}' > /tmp/s.json
//! (cat /tmp/s.json; sleep 600) | cargo run -p memo-examples --example graceful_stop -- --shutdown-timeout 5s
//! ```
//!
//! With `GRACEFUL_STOP_FAIL_STARTUP=1` its startup handler fails, and the operator exits with 1
//! before handling any event.

use memo_runtime::prelude::*;
use std::time::Duration;

#[handler(startup)]
fn check_settings() -> Result<(), String> {
    match std::env::var_os("GRACEFUL_STOP_FAIL_STARTUP") {
        Some(_) => Err("GRACEFUL_STOP_FAIL_STARTUP is set".to_owned()),
        None => Ok(()),
    }
}

fn seconds(body: &serde_json::Value, field: &str) -> u64 {
    body["spec"][field].as_u64().unwrap_or(0)
}

#[handler(event = "Sleeper")]
fn block(body: &serde_json::Value, logger: &Logger) {
    let seconds = seconds(body, "blockSeconds");
    logger.info(format!("blocking for {seconds} s"));
    std::thread::sleep(Duration::from_secs(seconds));
    logger.info("done blocking");
}

#[handler(event = "Sleeper")]
async fn wait(body: &serde_json::Value, logger: &Logger) {
    let seconds = seconds(body, "waitSeconds");
    logger.info(format!("waiting for {seconds} s"));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    logger.info("done waiting");
}

#[handler(cleanup)]
fn cleanup() {
    println!("cleanup ran");
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
