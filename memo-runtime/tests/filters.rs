//! `labels`, `annotations` and `when` filters choose the objects a handler runs for, judged on
//! the object as it is at each event (a timer: the latest object); `spec`, `status`, `labels`
//! and `annotations` are injected. Events go through the public API on a channel source.

mod common;

use common::*;
use memo_runtime::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::{Instant, sleep};

#[handler(event = "Gadget", labels = "tier=web, env in (prod, staging), !legacy")]
fn web(memo: &Memo, name: &str, labels: &Labels) {
    push(memo, format!("web {name} in {}", labels.get("env").unwrap_or("-")));
}

#[handler(create = "Gadget", annotations = "example.com/managed")]
fn managed(memo: &Memo, name: &str, annotations: &Annotations) {
    push(
        memo,
        format!(
            "managed {name} by {}",
            annotations.get("example.com/managed").unwrap_or("-")
        ),
    );
}

fn is_big(body: &Value) -> bool {
    body["spec"]["size"].as_u64().unwrap_or(0) > 10
}

#[handler(event = "Gadget", when = is_big)]
async fn big(memo: &Memo, name: &str, spec: &Value, status: &Value) {
    push(memo, format!("big {name} size {} status {status}", spec["size"]));
}

#[handler(update = "Gadget", labels = "tier=web")]
fn web_changed(memo: &Memo, name: &str, diff: &Diff) {
    let paths: Vec<&str> = diff.iter().map(|change| change.path()).collect();
    push(memo, format!("web update {name}: {}", paths.join(", ")));
}

#[handler(event = "Gadget", when = crate::all::none, labels = "tier=web")]
fn never(memo: &Memo, name: &str) {
    push(memo, format!("never {name}"));
}

mod all {
    pub fn none(_: &serde_json::Value) -> bool {
        false
    }
}

fn gadget(name: &str, labels: Value, annotations: Value, size: u64) -> Value {
    let mut object = object("Gadget", name, Some("default"), Some(&format!("uid-{name}")));
    object["metadata"]["labels"] = labels;
    object["metadata"]["annotations"] = annotations;
    object["spec"] = json!({"size": size});
    object
}

async fn run(events: Vec<Event>) -> Vec<String> {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    run_events(memo, 1, events).await.unwrap();
    entries(&log)
}

#[tokio::test]
async fn label_selectors_match_each_event_as_it_is() {
    let log = run(vec![
        Event::added(gadget("a", json!({"tier": "web", "env": "prod"}), json!({}), 1)),
        Event::added(gadget("b", json!({"tier": "web", "env": "dev"}), json!({}), 1)),
        Event::added(gadget(
            "c",
            json!({"tier": "web", "env": "prod", "legacy": ""}),
            json!({}),
            1,
        )),
        // `b` moves to staging: the selector starts to match it, and its update handler runs.
        Event::modified(gadget("b", json!({"tier": "web", "env": "staging"}), json!({}), 1)),
        // `a` leaves `web`: nothing selects it any more.
        Event::modified(gadget("a", json!({"tier": "api", "env": "prod"}), json!({}), 1)),
    ])
    .await;
    assert_eq!(
        log,
        [
            "web a in prod",
            "web b in staging",
            "web update b: /metadata/labels/env",
        ]
    );
}

#[tokio::test]
async fn annotation_selectors_and_when_functions() {
    let log = run(vec![
        Event::added(gadget("m", json!({}), json!({"example.com/managed": "team-a"}), 1)),
        Event::added(gadget("u", json!({}), json!({"example.com/other": "x"}), 20)),
        Event::modified({
            let mut object = gadget("u", json!({}), json!({}), 30);
            object["status"] = json!({"phase": "Grown"});
            object
        }),
        Event::modified(gadget("u", json!({}), json!({}), 3)),
    ])
    .await;
    assert_eq!(
        log,
        [
            "managed m by team-a",
            "big u size 20 status null",
            r#"big u size 30 status {"phase":"Grown"}"#,
        ]
    );
}

#[handler(timer = "Ticking", interval = 10, labels = "tick")]
fn tick(memo: &Memo, name: &str) {
    let start = *memo.get::<Instant>("start").unwrap();
    push(memo, format!("tick {name} at {}s", start.elapsed().as_secs()));
}

#[tokio::test(start_paused = true)]
async fn timers_are_filtered_by_the_latest_object() {
    let ticking = |name: &str, labels: Value| {
        let mut object = object("Ticking", name, Some("default"), Some(&format!("uid-{name}")));
        object["metadata"]["labels"] = labels;
        object
    };
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    memo.insert("start", Instant::now());
    let (events, running) = spawn_operator(memo, 1);
    events
        .send(Event::added(ticking("on", json!({"tick": "yes"}))))
        .await
        .unwrap();
    events.send(Event::added(ticking("off", json!({})))).await.unwrap();
    sleep(Duration::from_secs(15)).await;
    // Labelled now: `off` starts ticking, and `on` stops.
    events
        .send(Event::modified(ticking("off", json!({"tick": ""}))))
        .await
        .unwrap();
    events.send(Event::modified(ticking("on", json!({})))).await.unwrap();
    sleep(Duration::from_secs(10)).await;
    drop(events);
    running.await.unwrap().unwrap();
    assert_eq!(entries(&log), ["tick on at 0s", "tick on at 10s", "tick off at 20s"]);
}
