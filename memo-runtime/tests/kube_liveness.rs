//! `/healthz` of an operator on a Kubernetes source follows its watches: unavailable while one is
//! down, available again once it has listed anew (its own binary: the source resolves every
//! handler's kind through discovery).
#![cfg(feature = "kube")]

#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/scrape.rs"]
mod scrape;

use fake_api::FakeApi;
use memo_runtime::prelude::*;
use scrape::{free_address, get, sample, wait_for};
use serde_json::json;

#[handler(event = "KopfExample")]
fn seen() {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_follows_the_watch_connection() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.create("kopfexamples", Some("default"), "a", json!({}));
    let address = free_address();
    let source = memo_runtime::source::kubernetes(fake.client(), Vec::<String>::new())
        .await
        .expect("the kind resolves");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = Operator::new()
        .workers(1)
        .handle_signals(false)
        .liveness(&address)
        .source(source);
    // The cluster never ends: the test drops the run, and the server with it.
    let run = tokio::spawn(async move {
        tokio::select! {
            outcome = operator.run() => outcome,
            _ = stopped => Ok(()),
        }
    });

    let (_, metrics) = wait_for(&address, "/metrics", "the listed object handled", |_, text| {
        sample(text, r#"memo_events_handled_total{kind="KopfExample",type="ADDED"}"#) == Some(1.0)
    })
    .await;
    assert_eq!(sample(&metrics, "memo_source_connected"), Some(1.0), "{metrics}");
    let (status, body) = get(&address, "/healthz").await.unwrap();
    assert_eq!(status, 200, "{body}");

    // The API server goes away: the watch fails and retries, and the operator is not healthy.
    fake.go_down();
    let (_, body) = wait_for(&address, "/healthz", "an unhealthy operator", |status, _| status == 503).await;
    assert!(body.contains("not connected"), "{body}");
    let (_, metrics) = get(&address, "/metrics").await.unwrap();
    assert_eq!(sample(&metrics, "memo_source_connected"), Some(0.0), "{metrics}");

    // Back: the watch lists again, and the operator is healthy again.
    fake.go_up();
    fake.create("kopfexamples", Some("default"), "b", json!({}));
    wait_for(&address, "/healthz", "a healthy operator again", |status, _| {
        status == 200
    })
    .await;
    wait_for(&address, "/metrics", "the new object handled", |_, text| {
        sample(text, r#"memo_events_handled_total{kind="KopfExample",type="ADDED"}"#) == Some(2.0)
    })
    .await;

    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert!(
        get(&address, "/healthz").await.is_err(),
        "the server outlived its operator"
    );
}
