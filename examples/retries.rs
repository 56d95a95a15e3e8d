//! kopf's retries: a `Database` is provisioned by a create handler that fails temporarily while
//! its server restarts (retried after the delay it asks for), permanently when its spec is
//! invalid (never retried), and otherwise transiently a given number of times (retried with
//! backoff). The log tells each story, with handler and resource.
//!
//! ```text
//! echo '{"type": "ADDED", "object": {"apiVersion": "memo.dev/v1", "kind": "Database",
//!   "metadata": {"name": "db1", "namespace": "default", "uid": "u1"}, "spec": {"flakes": 2}}}' > /tmp/db.json
//! (cat /tmp/db.json; sleep 5) | cargo run -p memo-examples --example retries -- --source -
//! ```
//!
//! `spec.flakes: N` fails N times then succeeds; `spec.restarting: true` asks to be retried in
//! a minute; `spec.size: 0` is refused for good.

use memo_runtime::prelude::*;
use std::time::Duration;

#[handler(create = "Database", retries = 5, backoff = "500ms", timeout = "30s")]
async fn provision(memo: &mut Memo, body: &serde_json::Value, logger: &Logger) -> memo_runtime::Result<()> {
    let spec = &body["spec"];
    if spec["size"].as_i64() == Some(0) {
        return Err(Error::permanent("spec.size must be positive"));
    }
    if spec["restarting"].as_bool() == Some(true) {
        return Err(Error::temporary(
            "the database server is restarting",
            Duration::from_secs(60),
        ));
    }
    // Each try is counted in the resource's memo, which a retry keeps.
    let tries = memo.get::<u64>("tries").copied().unwrap_or(0) + 1;
    memo.insert("tries", tries);
    if tries <= spec["flakes"].as_u64().unwrap_or(0) {
        return Err(Error::custom(format!("connection reset (try {tries})")));
    }
    logger.info(format!(
        "provisioned after {tries} tr{}",
        if tries == 1 { "y" } else { "ies" }
    ));
    Ok(())
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
