//! `update` handlers run on real changes only: what an object's author wrote (its essence), not
//! its status or bookkeeping; they see `old`, `new` and `diff`, of the whole essence or of one
//! `field`. Events go through the public API on a channel source.

mod common;

use common::*;
use memo_runtime::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;

fn changes(diff: &Diff) -> String {
    diff.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

#[handler(event = "Widget")]
fn every_event(memo: &Memo, name: &str, event: &Event) {
    push(memo, format!("event {name} {}", event.r#type.as_str()));
}

#[handler(update = "Widget")]
fn changed(memo: &Memo, name: &str, old: &Value, new: &Value, diff: &Diff) {
    push(memo, format!("update {name}: {}", changes(diff)));
    push(memo, format!("  old {old}"));
    push(memo, format!("  new {new}"));
}

#[handler(update = "Widget", field = "spec.size")]
fn resized(memo: &Memo, name: &str, old: &Value, new: &Value, diff: &Diff) {
    push(memo, format!("size {name}: {old} -> {new} ({})", changes(diff)));
}

#[handler(update = "Widget", field = "spec.image")]
async fn reimaged(memo: &Memo, name: &str, new: &Value, diff: &Diff) {
    tokio::task::yield_now().await;
    push(memo, format!("image {name}: {new} ({} change)", diff.len()));
}

fn widget(name: &str, resource_version: u32, spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": format!("uid-{name}"),
            "resourceVersion": resource_version.to_string(),
            "generation": resource_version,
            "managedFields": [{"manager": format!("m{resource_version}")}],
            "labels": {"app": "w"},
        },
        "spec": spec,
        "status": status,
    })
}

async fn run(events: Vec<Event>) -> Vec<String> {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    run_events(memo, 1, events).await.unwrap();
    entries(&log)
}

#[tokio::test]
async fn status_and_bookkeeping_changes_run_no_update_handler() {
    let spec = json!({"size": 1, "image": "x"});
    let log = run(vec![
        Event::added(widget("a", 1, spec.clone(), Value::Null)),
        // The operator's own status write, with everything the API server changes with it.
        Event::modified(widget("a", 2, spec.clone(), json!({"phase": "Running"}))),
        Event::modified(widget("a", 3, spec.clone(), json!({"phase": "Ready"}))),
        // memo's own annotations are no change either.
        Event::modified({
            let mut object = widget("a", 4, spec.clone(), json!({"phase": "Ready"}));
            object["metadata"]["annotations"] = json!({"memo.dev/note": "mine"});
            object
        }),
    ])
    .await;
    assert_eq!(
        log,
        [
            "event a ADDED",
            "event a MODIFIED",
            "event a MODIFIED",
            "event a MODIFIED"
        ]
    );
}

#[tokio::test]
async fn a_spec_change_shows_its_diff_and_both_essences() {
    let log = run(vec![
        Event::added(widget("a", 1, json!({"size": 1, "image": "x"}), Value::Null)),
        Event::modified(widget(
            "a",
            2,
            json!({"size": 3, "image": "x"}),
            json!({"phase": "Resizing"}),
        )),
    ])
    .await;
    assert_eq!(
        log,
        [
            "event a ADDED",
            "event a MODIFIED",
            "update a: change /spec/size: 1 -> 3",
            r#"  old {"metadata":{"labels":{"app":"w"}},"spec":{"image":"x","size":1}}"#,
            r#"  new {"metadata":{"labels":{"app":"w"}},"spec":{"image":"x","size":3}}"#,
            "size a: 1 -> 3 (change : 1 -> 3)",
        ]
    );
}

#[tokio::test]
async fn labels_and_annotations_are_part_of_the_essence() {
    let spec = json!({"size": 1});
    let mut relabelled = widget("a", 2, spec.clone(), Value::Null);
    relabelled["metadata"]["labels"] = json!({"app": "v", "tier": "web"});
    relabelled["metadata"]["annotations"] = json!({"example.com/note": "hi", "memo.dev/x": "1"});
    let log = run(vec![
        Event::added(widget("a", 1, spec, Value::Null)),
        Event::modified(relabelled),
    ])
    .await;
    assert_eq!(
        log[2],
        r#"update a: add /metadata/annotations: {"example.com/note":"hi"}; change /metadata/labels/app: "w" -> "v"; add /metadata/labels/tier: "web""#
    );
}

#[tokio::test]
async fn a_field_handler_fires_on_its_field_only() {
    let log = run(vec![
        Event::added(widget("a", 1, json!({"size": 1, "image": "x"}), Value::Null)),
        Event::modified(widget("a", 2, json!({"size": 1, "image": "y"}), Value::Null)),
        // Removed: `new` is null.
        Event::modified(widget("a", 3, json!({"size": 1}), Value::Null)),
    ])
    .await;
    let fields: Vec<&String> = log
        .iter()
        .filter(|line| line.starts_with("size") || line.starts_with("image"))
        .collect();
    assert_eq!(fields, [r#"image a: "y" (1 change)"#, "image a: null (1 change)"]);
}

#[tokio::test]
async fn the_first_version_seen_is_the_base_even_when_modified() {
    let log = run(vec![
        // First seen as MODIFIED (the operator started after its creation).
        Event::modified(widget("b", 5, json!({"size": 1}), Value::Null)),
        Event::modified(widget("b", 6, json!({"size": 2}), Value::Null)),
    ])
    .await;
    assert_eq!(
        log,
        [
            "event b MODIFIED",
            "event b MODIFIED",
            "update b: change /spec/size: 1 -> 2",
            r#"  old {"metadata":{"labels":{"app":"w"}},"spec":{"size":1}}"#,
            r#"  new {"metadata":{"labels":{"app":"w"}},"spec":{"size":2}}"#,
            "size b: 1 -> 2 (change : 1 -> 2)",
        ]
    );
}

#[tokio::test]
async fn each_resource_has_its_own_base() {
    let log = run(vec![
        Event::added(widget("a", 1, json!({"size": 1}), Value::Null)),
        Event::added(widget("b", 1, json!({"size": 5}), Value::Null)),
        Event::modified(widget("b", 2, json!({"size": 5}), json!({"phase": "x"}))),
        Event::modified(widget("a", 2, json!({"size": 5}), Value::Null)),
    ])
    .await;
    let sizes: Vec<&String> = log.iter().filter(|line| line.starts_with("size")).collect();
    assert_eq!(sizes, ["size a: 1 -> 5 (change : 1 -> 5)"]);
}

#[handler(update = "Flaky", retries = 3, backoff = "1s")]
fn flaky(memo: &mut Memo, diff: &Diff) -> Result<()> {
    let calls = memo.get::<u32>("calls").copied().unwrap_or(0) + 1;
    memo.insert("calls", calls);
    push(memo, format!("call {calls}: {}", changes(diff)));
    if calls == 1 {
        return Err(Error::temporary("not yet", Duration::from_secs(1)));
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_retry_sees_the_same_change_and_the_base_moves_after_it() {
    let flaky = |version: u32, size: u64, phase: &str| {
        let mut object = common::object("Flaky", "f", Some("default"), Some("uid-f"));
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        object["spec"] = json!({"size": size});
        object["status"] = json!({"phase": phase});
        object
    };
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let (events, running) = spawn_operator(memo, 1);
    for event in [
        Event::added(flaky(1, 1, "")),
        Event::modified(flaky(2, 2, "")),
        // Held behind the retry, then compared with the version the retry handled.
        Event::modified(flaky(3, 2, "Done")),
        Event::modified(flaky(4, 4, "Done")),
    ] {
        events.send(event).await.unwrap();
    }
    // The end of the source would drop the retry: it runs first.
    tokio::time::sleep(Duration::from_secs(10)).await;
    drop(events);
    running.await.unwrap().unwrap();
    assert_eq!(
        entries(&log),
        [
            "call 1: change /spec/size: 1 -> 2",
            "call 2: change /spec/size: 1 -> 2",
            "call 3: change /spec/size: 2 -> 4",
        ]
    );
}
