//! Sharded replicas: N operators on the same events handle every event exactly once between
//! them, each resource wholly in one replica and in order, and skip the others' resources before
//! any memo is made.

mod common;

use common::*;
use memo_runtime::prelude::*;
use memo_runtime::shard::{Shard, stable_hash};

#[handler(event = "KopfExample")]
fn record(memo: &mut Memo, name: &str, event: &Event) {
    let seen = memo.get::<u64>("seen").copied().unwrap_or(0) + 1;
    memo.insert("seen", seen);
    let generation = event.object["spec"]["generation"].as_u64().unwrap_or(0);
    push(memo, format!("{name} {generation} {seen}"));
}

#[tokio::test]
async fn three_replicas_split_the_resources_exactly() {
    const RESOURCES: u64 = 60;
    const EVENTS_EACH: u64 = 5;
    let events: Vec<Event> = (0..EVENTS_EACH)
        .flat_map(|generation| {
            (0..RESOURCES).map(move |n| {
                let mut object = example(&format!("ex{n}"), &format!("uid-{n}"));
                object["spec"]["generation"] = generation.into();
                if generation == 0 {
                    Event::added(object)
                } else {
                    Event::modified(object)
                }
            })
        })
        .collect();
    let mut logs = Vec::new();
    for index in 0..3 {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let (sender, source) = memo_runtime::source::channel(64);
        let operator = Operator::new()
            .memo(memo)
            .workers(2)
            .handle_signals(false)
            .shard(index, 3)
            .source(source);
        let running = tokio::spawn(operator.run());
        for event in &events {
            sender.send(event.clone()).await.unwrap();
        }
        drop(sender);
        running.await.unwrap().unwrap();
        logs.push(entries(&log));
    }
    let mut handled = 0;
    for n in 0..RESOURCES {
        let name = format!("ex{n}");
        let owner = Shard::parse(&format!("{}/3", stable_hash(&format!("uid-{n}")) % 3)).unwrap();
        for (index, log) in logs.iter().enumerate() {
            let mine: Vec<&String> = log
                .iter()
                .filter(|line| line.split(' ').next() == Some(&*name))
                .collect();
            if index as u64 == owner.index() {
                // Every event, in order, on one memo that saw them all.
                let expected: Vec<String> = (0..EVENTS_EACH).map(|g| format!("{name} {g} {}", g + 1)).collect();
                assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "replica {index}");
                handled += mine.len() as u64;
            } else {
                assert!(mine.is_empty(), "replica {index} handled {name}: {mine:?}");
            }
        }
    }
    assert_eq!(handled, RESOURCES * EVENTS_EACH);
    assert!(
        logs.iter().all(|log| !log.is_empty()),
        "every replica got some resources"
    );
}

#[tokio::test]
async fn an_impossible_shard_fails_the_run() {
    let (_events, source) = memo_runtime::source::channel(1);
    let err = Operator::new()
        .handle_signals(false)
        .shard(3, 3)
        .source(source)
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shard 3/3 does not exist"), "{err}");
}
