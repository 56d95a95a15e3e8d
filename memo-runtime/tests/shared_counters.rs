//! Shared memory under real concurrency: several workers on a multi-threaded runtime never lose
//! an `update`, nor a lock-protected get/set.

mod common;

use common::*;
use memo_runtime::prelude::*;

#[handler(event = "Counter")]
async fn increment(shared: &Shared) -> memo_runtime::Result<()> {
    shared.update("messages", |n: &mut u64| *n += 1).await?;
    Ok(())
}

#[handler(event = "Counter")]
async fn locked_increment(shared: &Shared, name: &str) -> memo_runtime::Result<()> {
    let guard = shared.lock("update-messages").await?;
    let mut counts: std::collections::HashMap<String, u64> = shared.get("per-name").await?.unwrap_or_default();
    // Yield while holding the lock, so that an unprotected read-modify-write would lose writes.
    tokio::task::yield_now().await;
    *counts.entry(name.to_owned()).or_default() += 1;
    shared.set("per-name", &counts).await?;
    guard.release();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_workers_times_m_updates_lose_nothing() {
    const RESOURCES: usize = 8;
    const EVENTS_EACH: usize = 50;
    let operator = Operator::new().workers(4).handle_signals(false);
    let shared = operator.shared();
    let (events, source) = memo_runtime::source::channel(64);
    let running = tokio::spawn(operator.source(source).run());
    for round in 0..EVENTS_EACH {
        for resource in 0..RESOURCES {
            let object = object("Counter", &format!("c{resource}"), None, Some(&format!("u{resource}")));
            let event = if round == 0 {
                Event::added(object)
            } else {
                Event::modified(object)
            };
            events.send(event).await.unwrap();
        }
    }
    drop(events);
    running.await.unwrap().unwrap();

    assert_eq!(
        shared.get::<u64>("messages").await.unwrap(),
        Some((RESOURCES * EVENTS_EACH) as u64)
    );
    let counts: std::collections::HashMap<String, u64> = shared.get("per-name").await.unwrap().unwrap();
    assert_eq!(counts.len(), RESOURCES);
    assert!(counts.values().all(|&n| n == EVENTS_EACH as u64), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_updates_from_many_tasks() {
    let shared = Shared::new();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    shared.update("n", |n: &mut u64| *n += 1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(shared.get::<u64>("n").await.unwrap(), Some(4000));
}

#[tokio::test]
async fn wrong_type_reads_are_errors_naming_key_and_type() {
    let shared = Shared::new();
    shared.set("messages", "not a number").await.unwrap();
    let err = shared.get::<u64>("messages").await.unwrap_err();
    assert!(matches!(&err, Error::SharedType { key, type_name, .. } if key == "messages" && *type_name == "u64"));
    assert!(
        err.to_string()
            .contains("shared memory key `messages` cannot be used as a `u64`"),
        "{err}"
    );
    let err = shared.update("messages", |n: &mut u64| *n += 1).await.unwrap_err();
    assert!(err.to_string().contains("`messages`"), "{err}");
    assert_eq!(
        shared.get::<String>("messages").await.unwrap().as_deref(),
        Some("not a number"),
        "nothing lost"
    );
    assert!(shared.contains("messages").await.unwrap());
    assert_eq!(shared.keys().await.unwrap(), ["messages"]);
    assert!(shared.remove("messages").await.unwrap());
    assert!(!shared.remove("messages").await.unwrap());
    assert_eq!(shared.get::<u64>("messages").await.unwrap(), None);
}

#[test]
fn handlers_registered() {
    assert_eq!(memo_runtime::registered_handler_count(), 2);
}
