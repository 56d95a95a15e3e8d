//! Timers run per resource while it exists, never overlap themselves, see the latest body, and
//! stop when the resource is deleted. Time is paused, so nothing here waits for real.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::time::Duration;
use tokio::time::{Instant, sleep};

#[handler(timer = "KopfExample", interval = 10)]
fn tick(memo: &mut Memo, name: &str, body: &serde_json::Value) {
    let start = *memo.get::<Instant>("start").unwrap();
    let size = body["spec"]["size"].as_u64().unwrap_or(0);
    push(
        memo,
        format!("tick {name} at {}s size {size}", start.elapsed().as_secs()),
    );
}

#[handler(timer = "Slow", interval = "10s", initial_delay = "5s")]
async fn slow(memo: &Memo, name: &str) {
    let start = *memo.get::<Instant>("start").unwrap();
    push(memo, format!("slow {name} starts at {}s", start.elapsed().as_secs()));
    sleep(Duration::from_secs(15)).await;
}

fn with_size(name: &str, uid: &str, size: u64) -> serde_json::Value {
    let mut object = example(name, uid);
    object["spec"]["size"] = size.into();
    object
}

async fn timeline(workers: usize) -> Vec<String> {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    memo.insert("start", Instant::now());
    let (events, running) = spawn_operator(memo, workers);
    events.send(Event::added(with_size("a", "u-a", 1))).await.unwrap();
    sleep(Duration::from_secs(15)).await;
    events.send(Event::modified(with_size("a", "u-a", 2))).await.unwrap();
    sleep(Duration::from_secs(10)).await;
    events.send(Event::deleted(with_size("a", "u-a", 2))).await.unwrap();
    sleep(Duration::from_secs(30)).await;
    drop(events);
    running.await.unwrap().unwrap();
    entries(&log)
}

#[tokio::test(start_paused = true)]
async fn timer_runs_every_interval_sees_latest_body_and_stops_on_delete() {
    for workers in [1, 2] {
        assert_eq!(
            timeline(workers).await,
            ["tick a at 0s size 1", "tick a at 10s size 1", "tick a at 20s size 2"],
            "workers = {workers}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn timer_never_overlaps_itself_and_waits_initial_delay() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    memo.insert("start", Instant::now());
    let (events, running) = spawn_operator(memo, 2);
    events
        .send(Event::added(common::object("Slow", "s", None, Some("u-s"))))
        .await
        .unwrap();
    sleep(Duration::from_secs(60)).await;
    drop(events);
    running.await.unwrap().unwrap();
    // First run after the 5 s delay; each run takes 15 s and the next starts 10 s after it ended.
    assert_eq!(
        entries(&log),
        ["slow s starts at 5s", "slow s starts at 30s", "slow s starts at 55s"]
    );
}
