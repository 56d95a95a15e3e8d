//! Handlers that write back to the cluster (`patch`, `recorder`, `client`) and what they cost in
//! API requests, with the real kube client against the fake API server of
//! `support/fake_api.rs`: one merged patch per event (the `status` part through `/status`), no
//! read before a write, a status write that does not run `update` handlers again, a failed
//! handler's patch dropped, failures posted as Warning Events.
#![cfg(feature = "kube")]

mod common;
#[path = "support/fake_api.rs"]
mod fake_api;

use common::{Log, entries, log_in, push};
use fake_api::FakeApi;
use memo_runtime::prelude::*;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[handler(create = "KopfExample")]
fn created(memo: &mut Memo, name: &str, spec: &Value, patch: &mut Patch, recorder: &Recorder) {
    patch.merge(json!({"status": {"phase": "Created", "size": spec["size"].clone()}}));
    recorder.info("Created", format!("{name} is set up"));
    push(memo, format!("created {name}"));
}

// A second handler of the same event: its patch is merged with the first's, one write.
#[handler(create = "KopfExample")]
fn labelled(patch: &mut Patch) {
    patch.set("/metadata/labels/managed", "yes");
    patch.set("/status/labelled", true);
}

#[handler(update = "KopfExample")]
fn changed(memo: &mut Memo, name: &str, diff: &Diff, patch: &mut Patch) {
    for change in diff.iter() {
        push(
            memo,
            format!(
                "changed {name} {:?} {} {} -> {}",
                change.op(),
                change.path(),
                change.old().unwrap_or(&Value::Null),
                change.new().unwrap_or(&Value::Null)
            ),
        );
    }
    patch.set("/status/phase", "Updated");
}

#[handler(update = "KopfExample", field = "spec.replicas")]
fn scaled(memo: &mut Memo, name: &str, old: &Value, new: &Value) {
    push(memo, format!("scaled {name} {old} -> {new}"));
}

// `client` in an async handler: it reads through the operator's own client.
#[handler(create = "KopfExample")]
async fn counted(memo: &mut Memo, name: &str, client: &memo_runtime::kube::Client) -> memo_runtime::Result<()> {
    use memo_runtime::k8s_openapi::api::core::v1::ConfigMap;
    let config_maps = memo_runtime::kube::Api::<ConfigMap>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .map_err(|err| Error::custom(format!("cannot list: {err}")))?;
    push(memo, format!("client {name} {}", config_maps.items.len()));
    Ok(())
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

#[handler(create = "Widget")]
fn widget_first(patch: &mut Patch) {
    patch.set("/status/first", 1);
}

// Fails on its first call: its patch of that call is dropped; the first handler's is written.
#[handler(create = "Widget", backoff = "1s")]
fn widget_flaky(patch: &mut Patch) -> memo_runtime::Result<()> {
    let call = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    patch.set(&format!("/status/call{call}"), true);
    if call == 0 {
        return Err(Error::temporary("the backend is not ready", Duration::from_secs(1)));
    }
    Ok(())
}

fn fake() -> FakeApi {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.add_kind("kopf.dev", "v1", "Widget", "widgets", true);
    fake
}

/// An operator on `fake`'s cluster, watched directly (the cluster is where patches go); it runs
/// until the test ends.
async fn start(fake: &FakeApi) -> (Log, tokio::task::JoinHandle<memo_runtime::Result<()>>) {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let source = memo_runtime::source::kubernetes(fake.client(), ["default"])
        .await
        .expect("the kinds resolve");
    let operator = Operator::new()
        .memo(memo)
        .workers(1)
        .handle_signals(false)
        .source(source);
    (log, tokio::spawn(operator.run()))
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("waited for {what}");
}

async fn wait_for(log: &Log, prefix: &str, count: usize) {
    wait_until(&format!("{count} `{prefix}` entries in {:?}", entries(log)), || {
        entries(log).iter().filter(|e| e.starts_with(prefix)).count() >= count
    })
    .await;
}

const E1: &str = "/apis/kopf.dev/v1/namespaces/default/kopfexamples/e1";

#[tokio::test(start_paused = true)]
async fn patches_are_merged_into_one_write_and_status_writes_do_not_run_update_handlers() {
    let fake = fake();
    let (log, running) = start(&fake).await;
    fake.wait_for_watches(2).await;
    fake.reset_counts();
    fake.create("kopfexamples", Some("default"), "e1", json!({"size": 1}));
    wait_for(&log, "created e1", 1).await;
    wait_for(&log, "client e1", 1).await;
    // The label the operator wrote is a change of the object's essence, as any other client's
    // would be: the update handler sees it. The status writes are not.
    wait_for(&log, "changed e1", 1).await;
    wait_until("the status written", || {
        fake.object("kopfexamples", Some("default"), "e1")
            .is_some_and(|object| object["status"]["phase"] == "Updated" && object["status"]["labelled"] == true)
    })
    .await;
    let object = fake.object("kopfexamples", Some("default"), "e1").unwrap();
    assert_eq!(object["status"]["size"], 1);
    assert_eq!(object["metadata"]["labels"]["managed"], "yes");
    // Two events handled (the creation, the label), each with one PATCH of the object (for the
    // first, two handlers' patches and the operator's record of what it handled, in
    // annotations; for the second, the record) and one of its status. The count is by path
    // prefix: `E1` counts both.
    assert_eq!(
        fake.count("PATCH", &format!("{E1}/status")),
        2,
        "{:#?}",
        fake.requests()
    );
    assert_eq!(
        fake.count("PATCH", E1),
        4,
        "{:#?}",
        fake.recorded_requests()
            .iter()
            .map(|r| (r.path.clone(), r.body.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        fake.count("GET", E1),
        0,
        "no read before a write: {:#?}",
        fake.requests()
    );
    // The recorder's note became an Event about the object.
    wait_until("the Created event", || {
        fake.events().iter().any(|event| event["reason"] == "Created")
    })
    .await;
    let events = fake.events();
    let created = events.iter().find(|event| event["reason"] == "Created").unwrap();
    assert_eq!(created["type"], "Normal");
    assert_eq!(created["note"], "e1 is set up");
    assert_eq!(created["regarding"]["name"], "e1");

    // The operator's own writes (label and status) ran no update handler: a spec change does,
    // with the change alone in its diff, and one status write.
    fake.reset_counts();
    fake.replace("kopfexamples", Some("default"), "e1", json!({"size": 3}));
    wait_for(&log, "changed e1", 2).await;
    wait_until("the update's writes", || fake.count("PATCH", E1) == 2).await;
    assert_eq!(fake.count("PATCH", &format!("{E1}/status")), 1);
    // The field handler watches `spec.replicas`, which did not change.
    fake.replace("kopfexamples", Some("default"), "e1", json!({"size": 3, "replicas": 2}));
    wait_for(&log, "scaled e1", 1).await;
    // Let the status write's own MODIFIED come and go.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let changes: Vec<String> = entries(&log)
        .into_iter()
        .filter(|entry| entry.starts_with("changed") || entry.starts_with("scaled"))
        .collect();
    assert_eq!(
        changes,
        [
            // The object had no labels nor annotations: its essence had no `metadata`.
            "changed e1 Add /metadata null -> {\"labels\":{\"managed\":\"yes\"}}",
            "changed e1 Change /spec/size 1 -> 3",
            "changed e1 Add /spec/replicas null -> 2",
            "scaled e1 null -> 2",
        ]
    );
    running.abort();
}

#[tokio::test(start_paused = true)]
async fn a_failed_handlers_patch_is_dropped_and_its_failure_posted_as_a_warning() {
    let fake = fake();
    let (_log, running) = start(&fake).await;
    fake.wait_for_watches(2).await;
    fake.create("widgets", Some("default"), "w1", json!({}));
    wait_until("the retry's status", || {
        fake.object("widgets", Some("default"), "w1")
            .is_some_and(|object| object["status"]["call1"] == true)
    })
    .await;
    let object = fake.object("widgets", Some("default"), "w1").unwrap();
    assert_eq!(object["status"]["first"], 1, "the handler that succeeded wrote");
    assert!(object["status"].get("call0").is_none(), "{object}");
    let events = fake.events();
    let warnings: Vec<&Value> = events.iter().filter(|event| event["type"] == "Warning").collect();
    let [warning] = warnings.as_slice() else {
        panic!("one Warning: {events:#?}")
    };
    assert_eq!(warning["reason"], "HandlerFailed");
    assert_eq!(warning["regarding"]["name"], "w1");
    let note = warning["note"].as_str().unwrap();
    assert!(
        note.contains("widget_flaky") && note.contains("failed temporarily: the backend is not ready"),
        "{note}"
    );
    running.abort();
}
