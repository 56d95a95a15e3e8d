//! SIGTERM stops the operator with the same graceful steps as the end of its source: queued
//! events are handled, timers stop, cleanup runs, and `run` returns `Ok`. (Its own test binary:
//! signal handling is process-wide.)

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::time::Duration;

#[handler(event = "KopfExample")]
async fn slow(memo: &Memo, name: &str) {
    push(memo, format!("started {name}"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    push(memo, format!("handled {name}"));
}

#[handler(cleanup)]
fn cleanup(memo: &Memo) {
    push(memo, "cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let (events, source) = memo_runtime::source::channel(16);
    let running = tokio::spawn(Operator::new().memo(memo).workers(2).source(source).run());
    events.send(Event::added(example("first", "u-1"))).await.unwrap();
    // Once a handler ran, the operator is listening for signals. Start more work, then ask it to
    // stop while that work is in flight.
    events.send(Event::added(example("second", "u-2"))).await.unwrap();
    while !entries(&log).contains(&"started second".to_owned()) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("`kill` is available");
    assert!(status.success());
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stopped on SIGTERM");
    result.unwrap().unwrap();
    let log = entries(&log);
    assert!(
        log.contains(&"handled first".to_owned()) && log.contains(&"handled second".to_owned()),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("cleanup"), "{log:?}");
    // The source is no longer read: sending fails once the operator is gone.
    assert!(events.send(Event::added(example("third", "u-3"))).await.is_err());
}
