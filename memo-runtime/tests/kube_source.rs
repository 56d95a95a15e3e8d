//! The Kubernetes API as the source (`source::kubernetes`), with the real kube client against the
//! fake API server of `support/fake_api.rs`, in process and under paused time: the events that
//! reach handlers after lists, changes, dropped watches, outages and `410 Gone`.
#![cfg(feature = "kube")]

#[path = "support/cluster.rs"]
mod cluster;
mod common;
#[path = "support/fake_api.rs"]
mod fake_api;

use cluster::{start, three};
use common::{entries, push};
use fake_api::FakeApi;
use memo_runtime::prelude::*;
use serde_json::json;
use std::time::Duration;

// One kind, spelled three ways: all resolve to one watch of `kopfexamples.kopf.dev`.
#[handler(event = "KopfExample")]
fn by_kind(memo: &mut Memo, event: &Event, name: &str, namespace: Option<&str>) {
    let seen = memo.get::<u64>("seen").copied().unwrap_or(0) + 1;
    memo.insert("seen", seen);
    let replica = memo.get::<u64>("replica").copied().unwrap_or(0);
    push(
        memo,
        format!(
            "{} {}/{name} #{seen} r{replica}",
            event.r#type,
            namespace.unwrap_or("-")
        ),
    );
}

#[handler(event = "kopfexample")]
fn by_singular(memo: &mut Memo, event: &Event, name: &str) {
    push(memo, format!("singular {} {name}", event.r#type));
}

#[handler(event = "kopfexamples.kopf.dev")]
fn by_plural_and_group(memo: &mut Memo, event: &Event, name: &str) {
    push(memo, format!("plural {} {name}", event.r#type));
}

// The uid as the handlers get it, for the identity tests.
#[handler(event = "KopfExample")]
fn by_uid(memo: &mut Memo, event: &Event, name: &str) {
    push(
        memo,
        format!("uid {} {name} {}", event.r#type, event.uid().unwrap_or("-")),
    );
}

// An irregular plural: `ingresses` is `Ingress`, not `Ingresse`.
#[handler(create = "ingresses")]
fn ingress_created(memo: &mut Memo, name: &str) {
    push(memo, format!("ingress {name}"));
}

fn fake() -> FakeApi {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.add_kind("networking.k8s.io", "v1", "Ingress", "ingresses", true);
    fake
}

#[tokio::test(start_paused = true)]
async fn a_list_then_changes_reach_the_handlers_in_order_with_their_memos() {
    let fake = fake();
    three(&fake, "default");
    let running = start(&fake, &[], None).await;
    running.wait_for("ADDED", 3).await;
    fake.create("kopfexamples", Some("default"), "d", json!({"n": 1}));
    fake.replace("kopfexamples", Some("default"), "a", json!({"n": 2}));
    fake.delete("kopfexamples", Some("default"), "b");
    fake.create("ingresses", Some("default"), "web", json!({}));
    running.wait_for("ingress web", 1).await;
    running.wait_for("DELETED", 1).await;
    assert_eq!(
        running.kind_entries(),
        [
            "ADDED default/a #1 r0",
            "ADDED default/b #1 r0",
            "ADDED default/c #1 r0",
            "ADDED default/d #1 r0",
            "MODIFIED default/a #2 r0",
            "DELETED default/b #2 r0",
        ]
    );
    // Every spelling of the kind got every event, in order.
    let log = entries(&running.log);
    for handler in ["singular", "plural"] {
        let seen: Vec<&str> = log
            .iter()
            .filter_map(|e| e.strip_prefix(handler))
            .map(str::trim)
            .collect();
        assert_eq!(
            seen,
            ["ADDED a", "ADDED b", "ADDED c", "ADDED d", "MODIFIED a", "DELETED b"],
            "{handler}"
        );
    }
    // One watch served them all: one LIST of the kind.
    let lists = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /apis/kopf.dev/v1/kopfexamples?") && !r.contains("watch="))
        .count();
    assert_eq!(lists, 1, "{:#?}", fake.requests());
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_410_gone_the_relist_deletes_what_vanished_and_modifies_what_changed() {
    let fake = fake();
    for name in ["unchanged", "deleted", "changed"] {
        fake.create("kopfexamples", Some("default"), name, json!({"n": 1}));
    }
    let running = start(&fake, &[], None).await;
    running.wait_for("ADDED", 3).await;

    // While the watch is down, one object goes and one changes; then the history the watch
    // would resume from is gone: the server answers 410 and the watcher relists.
    fake.go_down();
    fake.delete("kopfexamples", Some("default"), "deleted");
    fake.replace("kopfexamples", Some("default"), "changed", json!({"n": 2}));
    fake.expire_history();
    fake.go_up();
    running.wait_for("DELETED", 1).await;
    running.wait_for("MODIFIED", 1).await;
    fake.create("kopfexamples", Some("default"), "sentinel", json!({}));
    running.wait_for("ADDED default/sentinel", 1).await;

    assert_eq!(
        running.kind_entries(),
        [
            // Listed by name.
            "ADDED default/changed #1 r0",
            "ADDED default/deleted #1 r0",
            "ADDED default/unchanged #1 r0",
            // The relist: the changed object (its memo kept), then the synthetic deletion.
            "MODIFIED default/changed #2 r0",
            "DELETED default/deleted #2 r0",
            "ADDED default/sentinel #1 r0",
        ]
    );
    let relists = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /apis/kopf.dev/v1/kopfexamples?") && !r.contains("watch="))
        .count();
    assert_eq!(relists, 2, "{:#?}", fake.requests());
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn namespaces_limit_the_watches() {
    let fake = fake();
    three(&fake, "default");
    fake.create("kopfexamples", Some("staging"), "s", json!({}));
    fake.create("kopfexamples", Some("other"), "o", json!({}));
    let running = start(&fake, &["staging", "other"], None).await;
    running.wait_for("ADDED", 2).await;
    fake.create("kopfexamples", Some("default"), "late", json!({}));
    fake.create("kopfexamples", Some("staging"), "sentinel", json!({}));
    running.wait_for("ADDED staging/sentinel", 1).await;
    let mut seen = running.kind_entries();
    seen.sort();
    assert_eq!(
        seen,
        [
            "ADDED other/o #1 r0",
            "ADDED staging/s #1 r0",
            "ADDED staging/sentinel #1 r0"
        ]
    );
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /apis/kopf.dev/v1/namespaces/staging/kopfexamples?"))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /apis/kopf.dev/v1/namespaces/other/kopfexamples?"))
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("GET /apis/kopf.dev/v1/kopfexamples?")),
        "{requests:#?}"
    );
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shards_split_the_cluster_before_any_memo_is_made() {
    let fake = fake();
    let names: Vec<String> = (0..20).map(|i| format!("ex{i}")).collect();
    for name in &names {
        fake.create("kopfexamples", Some("default"), name, json!({}));
    }
    let mut replicas = Vec::new();
    for index in 0..2u64 {
        let running = start(&fake, &[], Some((index, 2))).await;
        replicas.push(running);
    }
    let mut total = 0;
    while total < names.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        total = replicas.iter().map(|r| r.kind_entries().len()).sum();
    }
    let mut seen = Vec::new();
    for (index, running) in replicas.into_iter().enumerate() {
        let log = running.stop().await;
        for entry in entries(&log).into_iter().filter(|e| e.starts_with("ADDED")) {
            assert!(entry.ends_with(&format!("r{index}")), "{entry} reached replica {index}");
            seen.push(entry.split(' ').nth(1).expect("a name").to_owned());
        }
    }
    seen.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("default/{n}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "each object in exactly one replica");
}

fn uid_entries(running: &cluster::Running) -> Vec<String> {
    entries(&running.log)
        .into_iter()
        .filter(|e| e.starts_with("uid "))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_relist_after_an_object_was_recreated_under_its_name_deletes_the_old_uid_and_adds_the_new() {
    let fake = fake();
    let old = fake.create("kopfexamples", Some("default"), "a", json!({"n": 1}));
    let running = start(&fake, &[], None).await;
    running.wait_for("ADDED", 1).await;

    // Deleted and created again while the watch is down: the relist shows the same name with
    // another uid, which is another object.
    fake.go_down();
    fake.delete("kopfexamples", Some("default"), "a");
    let new = fake.create("kopfexamples", Some("default"), "a", json!({"n": 2}));
    fake.expire_history();
    fake.go_up();
    running.wait_for("uid DELETED", 1).await;

    assert_ne!(old, new);
    assert_eq!(
        uid_entries(&running),
        [
            format!("uid ADDED a {old}"),
            format!("uid ADDED a {new}"),
            format!("uid DELETED a {old}"),
        ]
    );
    // The new object starts with a memo of its own; the old one's ends with its deletion.
    assert_eq!(
        running.kind_entries(),
        [
            "ADDED default/a #1 r0",
            "ADDED default/a #1 r0",
            "DELETED default/a #2 r0"
        ]
    );
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn objects_with_an_empty_or_no_uid_are_told_apart_by_namespace_and_name() {
    let fake = fake();
    fake.create_with("kopfexamples", Some("default"), "a", json!({}), json!({"uid": ""}));
    fake.create_with("kopfexamples", Some("default"), "b", json!({}), json!({"uid": ""}));
    fake.create_with("kopfexamples", Some("default"), "c", json!({}), json!({"uid": null}));
    let running = start(&fake, &[], None).await;
    running.wait_for("ADDED", 3).await;
    fake.replace("kopfexamples", Some("default"), "a", json!({"n": 2}));
    running.wait_for("MODIFIED", 1).await;

    // A deletion missed while the watch is down is found by the relist, for the right object.
    fake.go_down();
    fake.delete("kopfexamples", Some("default"), "b");
    fake.expire_history();
    fake.go_up();
    running.wait_for("DELETED", 1).await;
    fake.create("kopfexamples", Some("default"), "sentinel", json!({}));
    running.wait_for("ADDED default/sentinel", 1).await;

    assert_eq!(
        running.kind_entries(),
        [
            "ADDED default/a #1 r0",
            "ADDED default/b #1 r0",
            "ADDED default/c #1 r0",
            "MODIFIED default/a #2 r0",
            "DELETED default/b #2 r0",
            "ADDED default/sentinel #1 r0",
        ]
    );
    running.stop().await;
}
