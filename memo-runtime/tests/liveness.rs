//! The liveness endpoint of an operator run in process: `/healthz` follows the run, `/metrics`
//! counts what happened, the address is taken at start and given back at the end.

mod common;
#[cfg(feature = "redis")]
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/scrape.rs"]
mod scrape;

use common::object;
use memo_runtime::prelude::*;
use scrape::{free_address, get, sample, wait_for};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::{Notify, Semaphore};

#[handler(event = "Widget")]
async fn widget(body: &serde_json::Value, shared: &Shared) -> memo_runtime::Result<()> {
    shared.update("widgets seen", |n: &mut u64| *n += 1).await?;
    if body["spec"]["fail"] == json!(true) {
        // Refused by the store: JSON has no NaN.
        shared.set("ratio", f64::NAN).await?;
    }
    Ok(())
}

#[handler(create = "Gadget", retries = 1, backoff = "10ms")]
fn gadget() -> memo_runtime::Result<()> {
    Err(Error::custom("gadgets always fail"))
}

/// Waits for the test to open the gate in the memo, if there is one.
async fn gate(memo: &Memo, name: &str) {
    if let Some(gate) = memo.get::<Arc<Notify>>(name) {
        gate.notified().await;
    }
}

#[handler(startup)]
async fn slow_startup(memo: &mut Memo) {
    gate(memo, "startup gate").await;
}

#[handler(cleanup)]
async fn slow_cleanup(memo: &mut Memo) {
    gate(memo, "cleanup gate").await;
}

#[handler(event = "Slow")]
async fn slow(memo: &mut Memo) {
    if let Some(gate) = memo.get::<Arc<Semaphore>>("slow gate") {
        gate.acquire().await.expect("the gate stays open").forget();
    }
}

fn event(r#type: EventType, kind: &str, name: &str, spec: serde_json::Value) -> Event {
    let mut object = object(kind, name, Some("default"), Some(&format!("uid-{kind}-{name}")));
    object["spec"] = spec;
    Event::new(r#type, object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_follow_the_run() {
    for workers in [1, 2] {
        let address = free_address();
        let (events, source) = memo_runtime::source::channel(64);
        let run = tokio::spawn(
            Operator::new()
                .workers(workers)
                .handle_signals(false)
                .liveness(&address)
                .source(source)
                .run(),
        );
        let (_, body) = wait_for(&address, "/healthz", "a healthy operator", |status, _| status == 200).await;
        assert!(body.starts_with("ok"), "{body}");

        for name in ["w0", "w1", "w2", "w3"] {
            events
                .send(event(EventType::Added, "Widget", name, json!({})))
                .await
                .unwrap();
        }
        events
            .send(event(EventType::Added, "Widget", "broken", json!({"fail": true})))
            .await
            .unwrap();
        events
            .send(event(EventType::Modified, "Widget", "w0", json!({"size": 2})))
            .await
            .unwrap();
        events
            .send(event(EventType::Added, "Gadget", "g", json!({})))
            .await
            .unwrap();
        events
            .send(event(EventType::Added, "ConfigMap", "c", json!({})))
            .await
            .unwrap();

        let (status, metrics) = wait_for(&address, "/metrics", "every event handled", |_, text| {
            sample(text, r#"memo_events_handled_total{kind="Widget",type="ADDED"}"#) == Some(5.0)
                && sample(text, r#"memo_events_handled_total{kind="Widget",type="MODIFIED"}"#) == Some(1.0)
                && sample(text, r#"memo_events_handled_total{kind="Gadget",type="ADDED"}"#) == Some(1.0)
                && sample(text, "memo_resources") == Some(6.0)
        })
        .await;
        assert_eq!(status, 200);
        let value = |series: &str| sample(&metrics, series).unwrap_or_else(|| panic!("no `{series}` in:\n{metrics}"));
        assert_eq!(value(r#"memo_events_received_total{kind="Widget",type="ADDED"}"#), 5.0);
        assert_eq!(
            value(r#"memo_events_received_total{kind="Widget",type="MODIFIED"}"#),
            1.0
        );
        assert_eq!(
            value(r#"memo_events_received_total{kind="Widget",type="DELETED"}"#),
            0.0
        );
        assert_eq!(value(r#"memo_events_received_total{kind="Gadget",type="ADDED"}"#), 1.0);
        // A kind no handler selects is received, under `kind="other"`, and not handled.
        assert_eq!(value(r#"memo_events_received_total{kind="other",type="ADDED"}"#), 1.0);
        assert_eq!(
            sample(&metrics, r#"memo_events_received_total{kind="ConfigMap",type="ADDED"}"#),
            None
        );
        assert_eq!(
            sample(&metrics, r#"memo_events_handled_total{kind="ConfigMap",type="ADDED"}"#),
            None
        );
        // The event handler: six calls, one failure, never retried.
        assert_eq!(value(r#"memo_handler_calls_total{handler="liveness::widget"}"#), 6.0);
        assert_eq!(value(r#"memo_handler_failures_total{handler="liveness::widget"}"#), 1.0);
        assert_eq!(value(r#"memo_handler_retries_total{handler="liveness::widget"}"#), 0.0);
        assert_eq!(
            value(r#"memo_handler_duration_seconds_count{handler="liveness::widget"}"#),
            6.0
        );
        // The create handler: tried, retried once, given up.
        assert_eq!(value(r#"memo_handler_calls_total{handler="liveness::gadget"}"#), 2.0);
        assert_eq!(value(r#"memo_handler_failures_total{handler="liveness::gadget"}"#), 2.0);
        assert_eq!(value(r#"memo_handler_retries_total{handler="liveness::gadget"}"#), 1.0);
        assert_eq!(value("memo_queue_depth"), 0.0);
        assert_eq!(value("memo_source_connected"), 1.0);
        assert_eq!(
            value(r#"memo_shared_operations_total{store="in-process",operation="update"}"#),
            6.0
        );
        assert_eq!(
            value(r#"memo_shared_operations_total{store="in-process",operation="set"}"#),
            1.0
        );
        assert_eq!(value(r#"memo_shared_errors_total{store="in-process"}"#), 1.0);
        assert!(
            metrics.contains("# TYPE memo_handler_duration_seconds histogram"),
            "{metrics}"
        );

        // The end of the source ends the run, and the server with it.
        drop(events);
        run.await.unwrap().expect("the run ends cleanly");
        let after = get(&address, "/healthz").await;
        assert!(after.is_err(), "still answering after the run: {after:?}");
    }
}

#[tokio::test]
async fn an_address_in_use_fails_the_start_and_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (_events, source) = memo_runtime::source::channel(1);
    let err = Operator::new()
        .handle_signals(false)
        .liveness(&address)
        .source(source)
        .run()
        .await
        .expect_err("the address is taken");
    let message = err.to_string();
    assert!(message.contains(&address), "{message}");
    assert!(message.contains("liveness"), "{message}");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let address = free_address();
    let (events, source) = memo_runtime::source::channel(1);
    let run = tokio::spawn(
        Operator::new()
            .handle_signals(false)
            .liveness(&address)
            .source(source)
            .run(),
    );
    wait_for(&address, "/healthz", "a healthy operator", |status, _| status == 200).await;
    let (status, body) = get(&address, "/nothing").await.unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("/healthz"), "{body}");
    drop(events);
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_unavailable_before_and_after_the_event_loop() {
    let address = free_address();
    let (startup, cleanup) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut memo = Memo::new();
    memo.insert("startup gate", Arc::clone(&startup));
    memo.insert("cleanup gate", Arc::clone(&cleanup));
    let (events, source) = memo_runtime::source::channel(1);
    let run = tokio::spawn(
        Operator::new()
            .memo(memo)
            .handle_signals(false)
            .liveness(&address)
            .source(source)
            .run(),
    );
    let (_, body) = wait_for(&address, "/healthz", "a starting operator", |status, _| status == 503).await;
    assert!(body.starts_with("starting"), "{body}");
    startup.notify_one();
    wait_for(&address, "/healthz", "a healthy operator", |status, _| status == 200).await;
    drop(events);
    let (_, body) = wait_for(&address, "/healthz", "a stopping operator", |status, _| status == 503).await;
    assert!(body.starts_with("stopped"), "{body}");
    // Metrics are still served while cleanup runs.
    let (status, _) = get(&address, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    cleanup.notify_one();
    run.await.unwrap().unwrap();
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_memory_in_redis_is_counted_under_its_store() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = memo_runtime::store::RedisStore::connect(server.url()).await.unwrap();
    let label = format!("Redis at {}", store.url());
    let address = free_address();
    let (events, source) = memo_runtime::source::channel(8);
    let run = tokio::spawn(
        Operator::new()
            .name("liveness-test")
            .store(store)
            .workers(1)
            .handle_signals(false)
            .liveness(&address)
            .source(source)
            .run(),
    );
    events
        .send(event(EventType::Added, "Widget", "r1", json!({})))
        .await
        .unwrap();
    events
        .send(event(EventType::Added, "Widget", "r2", json!({"fail": true})))
        .await
        .unwrap();
    let updates = format!(r#"memo_shared_operations_total{{store="{label}",operation="update"}}"#);
    let (_, metrics) = wait_for(&address, "/metrics", "two updates in Redis", |_, text| {
        sample(text, &updates) == Some(2.0)
            && sample(text, r#"memo_events_handled_total{kind="Widget",type="ADDED"}"#) == Some(2.0)
    })
    .await;
    let errors = format!(r#"memo_shared_errors_total{{store="{label}"}}"#);
    assert_eq!(sample(&metrics, &errors), Some(1.0), "{metrics}");
    assert_eq!(
        sample(&metrics, r#"memo_shared_errors_total{store="in-process"}"#),
        None
    );
    drop(events);
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depth_counts_events_waiting_behind_a_busy_resource() {
    let address = free_address();
    let gate = Arc::new(Semaphore::new(0));
    let mut memo = Memo::new();
    memo.insert("slow gate", Arc::clone(&gate));
    let (events, source) = memo_runtime::source::channel(8);
    let run = tokio::spawn(
        Operator::new()
            .memo(memo)
            .workers(2)
            .handle_signals(false)
            .liveness(&address)
            .source(source)
            .run(),
    );
    for _ in 0..3 {
        events
            .send(event(EventType::Modified, "Slow", "s", json!({})))
            .await
            .unwrap();
    }
    // The first event's handler waits at the gate; the two others wait behind it.
    let (_, metrics) = wait_for(&address, "/metrics", "two events queued", |_, text| {
        sample(text, "memo_queue_depth") == Some(2.0)
    })
    .await;
    assert_eq!(sample(&metrics, "memo_resources"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(&metrics, r#"memo_handler_calls_total{handler="liveness::slow"}"#),
        Some(0.0),
        "{metrics}"
    );
    gate.add_permits(3);
    wait_for(&address, "/metrics", "the queue drained", |_, text| {
        sample(text, "memo_queue_depth") == Some(0.0)
            && sample(text, r#"memo_events_handled_total{kind="Slow",type="MODIFIED"}"#) == Some(3.0)
    })
    .await;
    drop(events);
    run.await.unwrap().unwrap();
}
