//! A resource's memo lives from its first event until its DELETED handlers ran; an object
//! re-created under the same name (new uid) gets a fresh memo.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::sync::Arc;

struct Token;

#[handler(event = "KopfExample")]
fn count(memo: &mut Memo, namespace: Option<&str>, name: &str, uid: &str, event: &Event) {
    let n = memo.get::<u64>("n").copied().unwrap_or(0) + 1;
    memo.insert("n", n);
    if !memo.contains_key("token") {
        let token = memo.get::<Arc<Arc<Token>>>("tokens").unwrap().as_ref().clone();
        memo.insert("token", token);
    }
    push(
        memo,
        format!("{} {}/{name}/{uid} n={n}", event.r#type, namespace.unwrap_or("-")),
    );
}

#[handler(delete = "KopfExample")]
fn on_delete(memo: &Memo, name: &str) {
    push(
        memo,
        format!("delete {name} still has n={}", memo.get::<u64>("n").unwrap()),
    );
}

#[tokio::test]
async fn memo_is_dropped_after_delete_and_fresh_on_recreate() {
    for workers in [1, 3] {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let token = Arc::new(Token);
        memo.insert("tokens", Arc::new(Arc::clone(&token)));
        let (sender, running) = spawn_operator(memo, workers);
        for event in [
            Event::added(example("a", "u-1")),
            Event::modified(example("a", "u-1")),
            Event::deleted(example("a", "u-1")),
            Event::added(example("a", "u-2")),
        ] {
            sender.send(event).await.unwrap();
        }
        // Wait until the re-created object was handled: the first incarnation's memo is gone by
        // then, so only the second one holds the token.
        while entries(&log).len() < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // The first incarnation's memo is dropped right after its DELETED handlers: the count
        // settles at test + operator memo's copy + the one live resource.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&token) != 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(
            Arc::strong_count(&token),
            3,
            "test + operator memo's copy + one live resource"
        );
        drop(sender);
        running.await.unwrap().unwrap();
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "every memo is dropped when the operator ends"
        );
        // Different uids are different resources, which may run concurrently with several
        // workers: compare each incarnation's own history.
        let history = |marker: &str| -> Vec<String> {
            entries(&log)
                .into_iter()
                .filter(|entry| entry.contains(marker))
                .collect()
        };
        assert_eq!(
            history("u-1").into_iter().chain(history("delete")).collect::<Vec<_>>(),
            [
                "ADDED default/a/u-1 n=1",
                "MODIFIED default/a/u-1 n=2",
                "DELETED default/a/u-1 n=3",
                "delete a still has n=3"
            ],
            "workers = {workers}"
        );
        assert_eq!(history("u-2"), ["ADDED default/a/u-2 n=1"], "workers = {workers}");
        let log = entries(&log);
        let position = |entry: &str| log.iter().position(|e| e == entry).unwrap();
        assert!(position("DELETED default/a/u-1 n=3") < position("delete a still has n=3"));
    }
}

#[tokio::test]
async fn objects_without_uid_are_keyed_by_namespace_and_name() {
    for workers in [1, 3] {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let mut memo_with_tokens = memo;
        memo_with_tokens.insert("tokens", Arc::new(Arc::new(Token)));
        let in_ns = |ns: &str| common::object("KopfExample", "same", Some(ns), None);
        let events = vec![
            Event::added(in_ns("one")),
            Event::added(in_ns("two")),
            Event::modified(in_ns("one")),
            Event::deleted(in_ns("one")),
            Event::added(in_ns("one")),
        ];
        run_events(memo_with_tokens, workers, events).await.unwrap();
        let history = |namespace: &str| -> Vec<String> {
            let prefix = format!("{namespace}/same/ ");
            entries(&log)
                .into_iter()
                .filter_map(|entry| Some(entry.split_once(' ')?.1.strip_prefix(&prefix)?.to_owned()))
                .collect()
        };
        assert_eq!(history("one"), ["n=1", "n=2", "n=3", "n=1"], "workers = {workers}");
        assert_eq!(history("two"), ["n=1"], "workers = {workers}");
    }
}
