//! A watch that fails is logged with its kind and the growing delay before it resumes (its own
//! test binary: it reads the log, which other tests' threads would race with).
#![cfg(feature = "kube")]

#[path = "support/cluster.rs"]
mod cluster;
mod common;
#[path = "support/fake_api.rs"]
mod fake_api;

use cluster::{start, three};
use common::{capture_logs, entries, push};
use fake_api::FakeApi;
use memo_runtime::prelude::*;
use serde_json::json;
use std::time::Duration;

#[handler(event = "KopfExample")]
fn by_kind(memo: &mut Memo, event: &Event, name: &str, namespace: Option<&str>) {
    let seen = memo.get::<u64>("seen").copied().unwrap_or(0) + 1;
    memo.insert("seen", seen);
    push(
        memo,
        format!("{} {}/{name} #{seen} r0", event.r#type, namespace.unwrap_or("-")),
    );
}

fn fake() -> FakeApi {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake
}

#[tokio::test(start_paused = true)]
async fn a_dropped_watch_reconnects_with_backoff_without_repeating_events() {
    let (_guard, logs) = capture_logs();
    let fake = fake();
    three(&fake, "default");
    let running = start(&fake, &[], None).await;
    running.wait_for("ADDED", 3).await;

    // The connection drops and the server refuses watches for 10 s: the watch retries, its
    // delays growing, and resumes once the server is back.
    let before = tokio::time::Instant::now();
    fake.go_down();
    fake.replace("kopfexamples", Some("default"), "a", json!({"n": 2}));
    tokio::time::sleep(Duration::from_secs(10)).await;
    fake.go_up();
    running.wait_for("MODIFIED", 1).await;
    let waited = before.elapsed();

    // Each failure is logged with the kind and the delay before the next attempt.
    let logs = entries(&logs);
    let retries: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("retrying in") && l.contains("kind=KopfExample"))
        .collect();
    assert!(retries.len() >= 3, "{logs:#?}");
    for retry in &retries {
        assert!(retry.starts_with("WARN"), "{retry}");
        assert!(
            retry.contains("watching kopfexamples in all namespaces failed"),
            "{retry}"
        );
    }
    let delays: Vec<Duration> = retries.iter().map(|l| delay_in(l)).collect();
    assert!(delays[0] >= Duration::from_millis(800), "{delays:?}");
    assert!(
        delays.windows(2).all(|pair| pair[1] >= pair[0]),
        "the backoff grows: {delays:?}"
    );
    assert!(delays[2] > delays[0], "the backoff grows: {delays:?}");
    assert!(
        // The logged delays are rounded to a tenth of a second.
        waited + Duration::from_millis(50) * delays.len() as u32 >= delays.iter().sum(),
        "reconnected after {waited:?}, before the delays {delays:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("watching kopfexamples in all namespaces again")),
        "{logs:#?}"
    );

    // No event for the unchanged objects; the changed one's memo was kept.
    fake.create("kopfexamples", Some("default"), "sentinel", json!({}));
    running.wait_for("ADDED default/sentinel", 1).await;
    assert_eq!(
        running.kind_entries(),
        [
            "ADDED default/a #1 r0",
            "ADDED default/b #1 r0",
            "ADDED default/c #1 r0",
            "MODIFIED default/a #2 r0",
            "ADDED default/sentinel #1 r0",
        ]
    );
    running.stop().await;
}

/// The delay in a `retrying in 1.2s` log line.
fn delay_in(line: &str) -> Duration {
    let text = line.split("retrying in ").nth(1).expect("a delay");
    let text = text.split(['"', ' ']).next().expect("a delay");
    if let Some(ms) = text.strip_suffix("ms") {
        return Duration::from_secs_f64(ms.parse::<f64>().expect("milliseconds") / 1000.0);
    }
    let seconds = text
        .strip_suffix('s')
        .expect("seconds")
        .parse::<f64>()
        .expect("seconds");
    Duration::from_secs_f64(seconds)
}
