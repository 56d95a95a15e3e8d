//! A custom memo type: its `Clone` is the shallow copy; one whose clone shares a single inner
//! `Arc` is one global memo for every resource.

use memo_runtime::prelude::*;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Global(Arc<Mutex<Vec<String>>>);

#[handler(startup)]
fn hello(memo: &mut Global) {
    memo.0.lock().unwrap().push("startup".into());
}

#[handler(create = "KopfExample")]
fn created(memo: &Global, name: &str) {
    memo.0.lock().unwrap().push(format!("created {name}"));
}

#[handler(delete = "KopfExample")]
async fn deleted(memo: &mut Global, name: String) {
    memo.0.lock().unwrap().push(format!("deleted {name}"));
}

#[handler(event = "KopfExample")]
fn any_memo_type_is_fine_without_a_memo_parameter(name: &str) {
    assert!(!name.is_empty());
}

#[tokio::test]
async fn one_global_memo() {
    let global = Global::default();
    let (events, source) = memo_runtime::source::channel(8);
    let operator: Operator<Global> = Operator::new().memo(global.clone()).workers(1).handle_signals(false);
    let running = tokio::spawn(operator.source(source).run());
    let object = |name: &str| serde_json::json!({"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": name, "uid": name}});
    events.send(Event::added(object("a"))).await.unwrap();
    events.send(Event::added(object("b"))).await.unwrap();
    events.send(Event::deleted(object("a"))).await.unwrap();
    drop(events);
    running.await.unwrap().unwrap();
    assert_eq!(
        *global.0.lock().unwrap(),
        ["startup", "created a", "created b", "deleted a"]
    );
}
