//! The `status_writer` example run as a user runs it against a cluster (`KUBECONFIG` naming the
//! fake API server of the runtime's tests, over HTTP on loopback): what it writes, how many
//! requests that takes, the Events it posts, and that its own status writes never run its
//! `update` handlers again.
#![cfg(feature = "kube")]

#[path = "../../memo-runtime/tests/support/fake_api.rs"]
mod fake_api;
mod processes;

use fake_api::FakeApi;
use processes::{PATIENCE, Process};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const E1: &str = "/apis/kopf.dev/v1/namespaces/default/kopfexamples/e1";

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("memo-status-writer-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// Waits until `done` says yes, or fails naming `what` after [`PATIENCE`].
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < PATIENCE, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status(fake: &FakeApi, name: &str) -> Value {
    fake.object("kopfexamples", Some("default"), name)
        .map(|object| object["status"].clone())
        .unwrap_or_default()
}

fn events_with(fake: &FakeApi, reason: &str) -> Vec<Value> {
    fake.events()
        .into_iter()
        .filter(|event| event["reason"] == reason)
        .collect()
}

#[tokio::test]
async fn the_status_writer_writes_once_per_event_and_posts_events() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    let addr = fake.listen().await;
    let kubeconfig = fake.kubeconfig(addr, &temp_dir("writes"));
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");
    let mut writer = Process::start_plain("status_writer", &[], &[("KUBECONFIG", kubeconfig)]);
    writer.wait_for("watching kopfexamples.kopf.dev");
    fake.wait_for_watches(1).await;

    // A creation: one handler's patch, all status: one PATCH of `/status`, and one of the object
    // with what the operator records of its handling (the essence handled, in an annotation);
    // no read.
    fake.reset_counts();
    fake.create("kopfexamples", Some("default"), "e1", json!({"size": 1}));
    wait_until("the Created status", || status(&fake, "e1")["phase"] == "Created").await;
    assert_eq!(status(&fake, "e1")["size"], 1);
    wait_until("the Created event", || !events_with(&fake, "Created").is_empty()).await;
    assert_eq!(
        fake.count("PATCH", &format!("{E1}/status")),
        1,
        "{:#?}",
        fake.requests()
    );
    assert_eq!(fake.count("PATCH", E1), 2, "{:#?}", fake.requests());
    assert_eq!(fake.count("GET", E1), 0, "{:#?}", fake.requests());
    let recorded =
        fake.object("kopfexamples", Some("default"), "e1").unwrap()["metadata"]["annotations"]["memo.dev/last-handled"]
            .clone();
    assert_eq!(recorded, r#"{"spec":{"size":1}}"#);

    // A change of the spec: two update handlers, their patches merged into one PATCH of
    // `/status` (and the record, one of the object); the diff is the size alone.
    fake.reset_counts();
    fake.replace("kopfexamples", Some("default"), "e1", json!({"size": 3}));
    wait_until("the Updated status", || {
        let status = status(&fake, "e1");
        status["phase"] == "Updated" && status["size"] == 3
    })
    .await;
    writer.wait_for("Change /spec/size 1 -> 3");
    wait_until("the Resized event", || !events_with(&fake, "Resized").is_empty()).await;
    assert_eq!(fake.count("PATCH", E1), 2, "{:#?}", fake.requests());
    assert_eq!(fake.count("PATCH", &format!("{E1}/status")), 1);

    // A labelled object reaches the filtered handler; a big one fails its `big` handler (no
    // quota ConfigMap): retried, and posted as one Warning Event (rate-limited per object).
    fake.create_with(
        "kopfexamples",
        Some("default"),
        "web1",
        json!({"size": 2}),
        json!({"labels": {"tier": "web"}}),
    );
    writer.wait_for("web1 is a web object");
    fake.create("kopfexamples", Some("default"), "huge", json!({"size": 20}));
    writer.wait_for("handler `status_writer::big` gave up after 2 retries");
    let warnings: Vec<Value> = events_with(&fake, "HandlerFailed");
    let [warning] = warnings.as_slice() else {
        panic!("one Warning: {warnings:#?}")
    };
    assert_eq!(warning["type"], "Warning");
    assert_eq!(warning["regarding"]["name"], "huge");
    let note = warning["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("status_writer::big") && note.contains("no `big-quota` ConfigMap"),
        "{note}"
    );
    assert_eq!(
        status(&fake, "huge")["phase"],
        "Created",
        "the other handler's patch was written"
    );

    writer.signal("TERM");
    let exit = writer.wait_exit();
    let stderr = writer.stderr();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    // The operator's own status writes came back as MODIFIED events: none ran `changed` again.
    assert_eq!(stderr.matches("Change /spec/size").count(), 1, "{stderr}");
    assert!(!stderr.contains("/status/"), "{stderr}");
}

#[test]
fn without_a_cluster_a_handler_asking_for_a_client_stops_the_start() {
    let mut writer = Process::start("status_writer", &[], &[]);
    writer.write(&processes::watch_event(
        "ADDED",
        "KopfExample",
        "s1",
        json!({"size": 1}),
    ));
    writer.close_stdin();
    let exit = writer.wait_exit();
    let stderr = writer.stderr();
    // `big` asks for a client, and `--source` is no cluster.
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("M0005") && stderr.contains("handler `status_writer::big`"),
        "{stderr}"
    );
}
