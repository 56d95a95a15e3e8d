//! kopf's memo semantics through the operator: each resource memo is a shallow copy of the
//! operator memo. Shared mutable objects stay shared; rebinding a key stays local.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::sync::{Arc, Mutex};

#[handler(event = "KopfExample")]
fn rebind_and_share(memo: &mut Memo, name: &str) {
    let inherited = *memo.get::<&'static str>("greeting").unwrap();
    push(memo, format!("{name} sees {inherited}"));
    memo.insert("greeting", "rebound locally");
    memo.get::<Arc<Mutex<Vec<String>>>>("visitors")
        .unwrap()
        .lock()
        .unwrap()
        .push(name.to_owned());
    let seen = memo.get::<u64>("seen").copied().unwrap_or(0);
    memo.insert("seen", seen + 1);
    push(memo, format!("{name} seen {}", seen + 1));
}

#[handler(cleanup)]
fn report(memo: &mut Memo) {
    let greeting = *memo.get::<&'static str>("greeting").unwrap();
    push(
        memo,
        format!("operator sees {greeting}; has seen: {}", memo.contains_key("seen")),
    );
}

#[tokio::test]
async fn shared_objects_stay_shared_and_rebinding_stays_local() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let visitors: Arc<Mutex<Vec<String>>> = Arc::default();
    memo.insert("visitors", Arc::clone(&visitors));
    memo.insert("greeting", "from the operator");

    let events = vec![
        Event::added(example("a", "u-a")),
        Event::added(example("b", "u-b")),
        Event::modified(example("a", "u-a")),
    ];
    run_events(memo, 1, events).await.unwrap();

    assert_eq!(
        entries(&log),
        [
            "a sees from the operator",
            "a seen 1",
            "b sees from the operator",
            "b seen 1",
            "a sees rebound locally",
            "a seen 2",
            "operator sees from the operator; has seen: false",
        ]
    );
    assert_eq!(
        *visitors.lock().unwrap(),
        ["a", "b", "a"],
        "the Arc<Mutex<_>> is one object everywhere"
    );
}

#[test]
fn cloning_is_shallow_and_constant_time() {
    let mut operator = Memo::new();
    for key in 0..1000 {
        operator.insert(format!("key-{key}"), key);
    }
    let resources: Vec<Memo> = (0..10_000)
        .map(|n| {
            let mut memo = operator.clone();
            memo.insert("own", n);
            memo
        })
        .collect();
    assert_eq!(resources[1234].get::<i32>("key-999"), Some(&999));
    assert_eq!(resources[1234].get::<i32>("own"), Some(&1234));
    assert_eq!(resources[1234].len(), 1001);
    assert!(!operator.contains_key("own"));
}
