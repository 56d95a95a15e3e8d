//! A resource is its API group, kind, namespace and name: objects of different kinds with the
//! same namespace and name, and no uid, are different resources with their own memos and
//! handlers.

mod common;

use common::*;
use memo_runtime::prelude::*;

fn count(memo: &mut Memo) -> u64 {
    let n = memo.get::<u64>("events").copied().unwrap_or(0) + 1;
    memo.insert("events", n);
    n
}

#[handler(event = "ConfigMap")]
fn config_map(memo: &mut Memo, name: &str, namespace: Option<&str>, logger: &Logger) {
    let n = count(memo);
    push(
        memo,
        format!(
            "ConfigMap {}/{name} #{n} ({})",
            namespace.unwrap_or("-"),
            logger.kind().unwrap_or("?")
        ),
    );
}

#[handler(event = "Secret")]
fn secret(memo: &mut Memo, name: &str, namespace: Option<&str>, logger: &Logger) {
    let n = count(memo);
    push(
        memo,
        format!(
            "Secret {}/{name} #{n} ({})",
            namespace.unwrap_or("-"),
            logger.kind().unwrap_or("?")
        ),
    );
}

#[handler(event = "widgets.a.example")]
fn widget_a(memo: &mut Memo, name: &str) {
    let n = count(memo);
    push(memo, format!("a.example Widget {name} #{n}"));
}

#[handler(event = "widgets.b.example")]
fn widget_b(memo: &mut Memo, name: &str) {
    let n = count(memo);
    push(memo, format!("b.example Widget {name} #{n}"));
}

fn in_group(kind: &str, api_version: &str) -> serde_json::Value {
    let mut object = object(kind, "foo", Some("d"), None);
    object["apiVersion"] = api_version.into();
    object
}

fn core(kind: &str) -> serde_json::Value {
    in_group(kind, "v1")
}

#[tokio::test]
async fn same_name_different_kind_or_group_are_different_resources() {
    for workers in [1, 2] {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let events = vec![
            Event::added(core("ConfigMap")),
            Event::added(core("Secret")),
            Event::added(in_group("Widget", "a.example/v1")),
            Event::added(in_group("Widget", "b.example/v1")),
            Event::modified(core("ConfigMap")),
            Event::modified(core("Secret")),
            Event::modified(in_group("Widget", "a.example/v1")),
            Event::modified(in_group("Widget", "b.example/v1")),
        ];
        run_events(memo, workers, events).await.unwrap();
        let mut log = entries(&log);
        log.sort();
        assert_eq!(
            log,
            [
                "ConfigMap d/foo #1 (ConfigMap)",
                "ConfigMap d/foo #2 (ConfigMap)",
                "Secret d/foo #1 (Secret)",
                "Secret d/foo #2 (Secret)",
                "a.example Widget foo #1",
                "a.example Widget foo #2",
                "b.example Widget foo #1",
                "b.example Widget foo #2",
            ],
            "with {workers} worker(s)"
        );
    }
}
