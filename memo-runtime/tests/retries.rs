//! Failed create, update and delete handlers are retried with backoff, in paused time, through
//! the public API: call counts and delays, `Error::temporary` and `Error::permanent`, `retries`,
//! `timeout`, per-resource order while a retry waits, deletions, and the end of the source.

mod common;

use common::{Log, capture_logs, entries, log_in, push};
use memo_runtime::prelude::*;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

/// The tests read the log, which tracing's per-callsite caches make unreliable across threads
/// running at once: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Seconds since the test started (paused time), to one decimal.
fn now(memo: &Memo) -> f64 {
    let start = memo.get::<Instant>("start").copied().expect("the test sets `start`");
    (start.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

fn calls(memo: &mut Memo) -> u64 {
    let calls = memo.get::<u64>("calls").copied().unwrap_or(0) + 1;
    memo.insert("calls", calls);
    calls
}

// --- Flaky: fails three times, then succeeds; one handler before it and one after.

#[handler(create = "Flaky")]
fn flaky_before(memo: &mut Memo) {
    push(memo, format!("before {}", now(memo)));
}

#[handler(create = "Flaky", backoff = "2s")]
fn flaky(memo: &mut Memo) -> Result<(), String> {
    let calls = calls(memo);
    push(memo, format!("flaky {} {}", calls, now(memo)));
    if calls <= 3 {
        return Err(format!("failure {calls}"));
    }
    Ok(())
}

#[handler(create = "Flaky")]
fn flaky_after(memo: &mut Memo) {
    push(memo, format!("after {}", now(memo)));
}

// --- Temporary with its own delay; permanent; limited retries; a timeout.

#[handler(create = "Later", backoff = "1s")]
fn later(memo: &mut Memo) -> memo_runtime::Result<()> {
    let calls = calls(memo);
    push(memo, format!("later {} {}", calls, now(memo)));
    if calls == 1 {
        return Err(Error::temporary("the database is restarting", Duration::from_secs(10)));
    }
    Ok(())
}

#[handler(create = "Broken")]
fn broken(memo: &mut Memo) -> memo_runtime::Result<()> {
    push(memo, format!("broken {}", now(memo)));
    Err(Error::permanent("spec.size must be positive"))
}

#[handler(create = "Broken")]
fn broken_after(memo: &mut Memo) {
    push(memo, "broken_after");
}

#[handler(create = "Limited", retries = 3, backoff = "1s")]
fn limited(memo: &mut Memo) -> Result<(), String> {
    push(memo, format!("limited {}", now(memo)));
    Err("still failing".to_owned())
}

#[handler(create = "Slow", timeout = "1s", backoff = "1s")]
async fn slow(memo: &mut Memo) {
    let calls = calls(memo);
    push(memo, format!("slow start {} {}", calls, now(memo)));
    if calls == 1 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    push(memo, format!("slow end {} {}", calls, now(memo)));
}

#[handler(create = "Panicky", backoff = "1s")]
fn panicky(memo: &mut Memo) {
    if calls(memo) == 1 {
        panic!("first call panics");
    }
    push(memo, format!("panicky ok {}", now(memo)));
}

// --- Order: r1's create fails once; its update must wait, r2 must not.

#[handler(create = "Ordered", backoff = "10s")]
fn ordered_create(memo: &mut Memo, name: &str) -> Result<(), String> {
    let calls = calls(memo);
    push(memo, format!("create {name} #{calls} {}", now(memo)));
    if name == "r1" && calls == 1 {
        return Err("not yet".to_owned());
    }
    Ok(())
}

#[handler(update = "Ordered")]
fn ordered_update(memo: &mut Memo, name: &str) {
    push(memo, format!("update {name} {}", now(memo)));
}

// --- Deletion: cancels create retries; a delete handler's retries keep the memo.

#[handler(create = "Doomed", backoff = "10s")]
fn doomed_create(memo: &mut Memo) -> Result<(), String> {
    push(memo, format!("create {}", now(memo)));
    Err("never works".to_owned())
}

#[handler(update = "Doomed")]
fn doomed_update(memo: &mut Memo) {
    push(memo, "update");
}

#[handler(delete = "Doomed", backoff = "1s")]
fn doomed_delete(memo: &mut Memo) -> Result<(), String> {
    let calls = calls(memo);
    push(memo, format!("delete #{calls} {}", now(memo)));
    if calls <= 2 {
        return Err("the finalizer is busy".to_owned());
    }
    Ok(())
}

// --- An event handler is not retried.

#[handler(event = "Noisy")]
fn noisy(memo: &mut Memo) -> memo_runtime::Result<()> {
    push(memo, "noisy");
    Err(Error::temporary("ignored", Duration::from_secs(1)))
}

fn object(kind: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "test/v1", "kind": kind,
           "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{kind}-{name}")}})
}

/// The object with a new `spec`: an `update` handler runs on a change of what its author wrote.
fn changed(mut object: serde_json::Value) -> serde_json::Value {
    object["spec"] = json!({"changed": true});
    object
}

struct Running {
    log: Log,
    events: memo_runtime::source::EventSender,
    task: tokio::task::JoinHandle<memo_runtime::Result<()>>,
}

fn start(workers: usize) -> Running {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    memo.insert("start", Instant::now());
    let (events, source) = memo_runtime::source::channel(64);
    let operator = Operator::new()
        .memo(memo)
        .workers(workers)
        .handle_signals(false)
        .source(source);
    Running {
        log,
        events,
        task: tokio::spawn(operator.run()),
    }
}

impl Running {
    async fn send(&self, event: Event) {
        self.events.send(event).await.expect("the operator runs");
    }

    /// Waits (in paused time) until `count` entries start with `prefix`.
    async fn wait_for(&self, prefix: &str, count: usize) {
        for _ in 0..1_000_000 {
            if entries(&self.log).iter().filter(|e| e.starts_with(prefix)).count() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("waited for {count} `{prefix}`: {:#?}", entries(&self.log));
    }

    /// Lets `seconds` of paused time pass.
    async fn idle(&self, seconds: u64) {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }

    async fn stop(self) -> Vec<String> {
        drop(self.events);
        self.task
            .await
            .expect("the operator task panicked")
            .expect("the operator stops cleanly");
        entries(&self.log)
    }
}

/// The time in an entry ending with ` SECONDS`.
fn time_of(entry: &str) -> f64 {
    entry
        .rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("an entry ending with its time")
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_are_retried_with_growing_jittered_backoff_until_success() {
    let _serial = SERIAL.lock().await;
    let (_guard, logs) = capture_logs();
    let running = start(1);
    running.send(Event::added(object("Flaky", "f"))).await;
    running.wait_for("after", 1).await;
    running.idle(600).await;
    let log = running.stop().await;

    let flaky: Vec<&String> = log.iter().filter(|e| e.starts_with("flaky")).collect();
    assert_eq!(flaky.len(), 4, "three failures, then the success: {log:#?}");
    let times: Vec<f64> = flaky.iter().map(|e| time_of(e)).collect();
    let delays: Vec<f64> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    // 2 s, doubling, each plus up to a quarter of jitter (the times are rounded to 0.1 s).
    for (delay, base) in delays.iter().zip([2.0, 4.0, 8.0]) {
        assert!(
            *delay >= base - 0.11 && *delay <= base * 1.25 + 0.11,
            "delays {delays:?}"
        );
    }
    // The handler before it succeeded already and ran once; the one after ran once, at the end.
    assert_eq!(log.iter().filter(|e| e.starts_with("before")).count(), 1, "{log:#?}");
    let after: Vec<&String> = log.iter().filter(|e| e.starts_with("after")).collect();
    assert_eq!(after.len(), 1, "{log:#?}");
    assert_eq!(time_of(after[0]), times[3]);

    let logs = entries(&logs);
    let temporary: Vec<&String> = logs.iter().filter(|l| l.contains("failed temporarily")).collect();
    assert_eq!(temporary.len(), 3, "{logs:#?}");
    assert!(temporary[0].starts_with("WARN"), "{}", temporary[0]);
    assert!(
        temporary[0].contains("handler `retries::flaky` failed temporarily: failure 1; retrying in 2"),
        "{}",
        temporary[0]
    );
    assert!(
        temporary[0].contains("kind=\"Flaky\"") && temporary[0].contains("name=\"f\""),
        "{}",
        temporary[0]
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("INFO") && l.contains("handler `retries::flaky` succeeded after 3 retries")),
        "{logs:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_temporary_error_is_retried_after_its_own_delay() {
    let _serial = SERIAL.lock().await;
    let running = start(1);
    running.send(Event::added(object("Later", "l"))).await;
    running.wait_for("later 2", 1).await;
    let log = running.stop().await;
    let times: Vec<f64> = log
        .iter()
        .filter(|e| e.starts_with("later"))
        .map(|e| time_of(e))
        .collect();
    assert_eq!(times, [0.0, 10.0], "{log:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_runs_once_and_the_next_handlers_still_run() {
    let _serial = SERIAL.lock().await;
    let (_guard, logs) = capture_logs();
    let running = start(1);
    running.send(Event::added(object("Broken", "b"))).await;
    running.wait_for("broken_after", 1).await;
    running.idle(600).await;
    let log = running.stop().await;
    assert_eq!(log, ["broken 0", "broken_after"]);
    let logs = entries(&logs);
    assert!(
        logs.iter().any(|l| l.starts_with("ERROR")
            && l.contains("handler `retries::broken` failed permanently: spec.size must be positive")),
        "{logs:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_3_gives_up_after_4_calls() {
    let _serial = SERIAL.lock().await;
    let (_guard, logs) = capture_logs();
    let running = start(2);
    running.send(Event::added(object("Limited", "x"))).await;
    running.wait_for("limited", 4).await;
    running.idle(600).await;
    let log = running.stop().await;
    assert_eq!(log.iter().filter(|e| e.starts_with("limited")).count(), 4, "{log:#?}");
    let logs = entries(&logs);
    assert!(
        logs.iter().any(|l| l.starts_with("ERROR")
            && l.contains("handler `retries::limited` gave up after 3 retries: still failing")),
        "{logs:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cancels_a_slow_async_handler_and_retries_it() {
    let _serial = SERIAL.lock().await;
    let (_guard, logs) = capture_logs();
    let running = start(1);
    running.send(Event::added(object("Slow", "s"))).await;
    running.wait_for("slow end", 1).await;
    let log = running.stop().await;
    // Cancelled at 1 s (never reached its end), retried 1 s later (plus jitter).
    assert_eq!(log.iter().filter(|e| e.starts_with("slow end")).count(), 1, "{log:#?}");
    assert_eq!(log[0], "slow start 1 0");
    let second = time_of(&log[1]);
    assert!(
        log[1].starts_with("slow start 2") && (2.0..=2.3).contains(&second),
        "{log:#?}"
    );
    let logs = entries(&logs);
    assert!(
        logs.iter()
            .any(|l| l.contains("handler `retries::slow` failed temporarily: timed out after 1s")),
        "{logs:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_temporary_failure() {
    let _serial = SERIAL.lock().await;
    let running = start(1);
    running.send(Event::added(object("Panicky", "p"))).await;
    running.wait_for("panicky ok", 1).await;
    let log = running.stop().await;
    assert!((1.0..=1.3).contains(&time_of(&log[0])), "{log:#?}");
}

async fn later_events_wait_behind_the_retry_other_resources_do_not(workers: usize) {
    let running = start(workers);
    running.send(Event::added(object("Ordered", "r1"))).await;
    running.send(Event::modified(changed(object("Ordered", "r1")))).await;
    running.send(Event::added(object("Ordered", "r2"))).await;
    running.send(Event::modified(changed(object("Ordered", "r2")))).await;
    running.wait_for("update r1", 1).await;
    let log = running.stop().await;
    let without_times: Vec<&str> = log.iter().map(|e| e.rsplit_once(' ').expect("a time").0).collect();
    assert_eq!(
        without_times,
        ["create r1 #1", "create r2 #1", "update r2", "create r1 #2", "update r1"],
        "workers: {workers}"
    );
    // r2 went on at once; r1's update waited for its create's retry, 10 s (plus jitter) later.
    assert_eq!(time_of(&log[2]), 0.0);
    assert!(
        time_of(&log[3]) >= 10.0 && time_of(&log[4]) == time_of(&log[3]),
        "{log:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn later_events_of_a_resource_wait_for_its_retry_while_others_run_inline() {
    let _serial = SERIAL.lock().await;
    later_events_wait_behind_the_retry_other_resources_do_not(1).await;
}

#[tokio::test(start_paused = true)]
async fn later_events_of_a_resource_wait_for_its_retry_while_others_run_on_workers() {
    let _serial = SERIAL.lock().await;
    later_events_wait_behind_the_retry_other_resources_do_not(2).await;
}

async fn deleted_cancels_the_create_retry_and_delete_retries_keep_the_memo(workers: usize) {
    let (_guard, logs) = capture_logs();
    let running = start(workers);
    running.send(Event::added(object("Doomed", "d"))).await;
    running.wait_for("create", 1).await;
    running.send(Event::modified(changed(object("Doomed", "d")))).await;
    running.send(Event::deleted(object("Doomed", "d"))).await;
    running.wait_for("delete #3", 1).await;
    running.idle(600).await;
    let log = running.stop().await;
    // The create ran once (its retry cancelled), the update waiting behind it was dropped, the
    // delete handler's retries ran on the same memo (its call count went on: 1, 2, 3).
    let without_times: Vec<&str> = log
        .iter()
        .map(|e| e.rsplit_once(' ').map_or(e.as_str(), |(text, _)| text))
        .collect();
    assert_eq!(
        without_times,
        ["create", "delete #1", "delete #2", "delete #3"],
        "workers {workers}: {log:#?}"
    );
    let logs = entries(&logs);
    assert!(logs.iter().any(|l| l.contains(
        "the resource was deleted: the retry of handler `retries::doomed_create` is cancelled, and 1 event(s) waiting behind it dropped"
    )), "{logs:#?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("handler `retries::doomed_delete` succeeded after 2 retries")),
        "{logs:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn deleted_cancels_pending_retries_inline() {
    let _serial = SERIAL.lock().await;
    deleted_cancels_the_create_retry_and_delete_retries_keep_the_memo(1).await;
}

#[tokio::test(start_paused = true)]
async fn deleted_cancels_pending_retries_on_workers() {
    let _serial = SERIAL.lock().await;
    deleted_cancels_the_create_retry_and_delete_retries_keep_the_memo(2).await;
}

#[tokio::test(start_paused = true)]
async fn event_handlers_are_not_retried() {
    let _serial = SERIAL.lock().await;
    let running = start(1);
    running.send(Event::added(object("Noisy", "n"))).await;
    running.wait_for("noisy", 1).await;
    running.idle(600).await;
    assert_eq!(running.stop().await, ["noisy"]);
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_source_does_not_wait_for_scheduled_retries() {
    let _serial = SERIAL.lock().await;
    for workers in [1, 2] {
        let (_guard, logs) = capture_logs();
        let started = Instant::now();
        let running = start(workers);
        running.send(Event::added(object("Doomed", "pending"))).await;
        running
            .send(Event::modified(changed(object("Doomed", "pending"))))
            .await;
        running.wait_for("create", 1).await;
        let log = running.stop().await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited {:?} for a retry",
            started.elapsed()
        );
        // The retry was dropped; the update that waited behind it ran.
        assert_eq!(log.len(), 2, "{log:#?}");
        assert!(log[1] == "update", "{log:#?}");
        let logs = entries(&logs);
        assert!(
            logs.iter()
                .any(|l| l.contains("the source ended: 1 scheduled retry dropped")),
            "workers {workers}: {logs:#?}"
        );
    }
}
