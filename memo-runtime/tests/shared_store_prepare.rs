//! Preparation against both stores: preparers run exactly once per memory per store, even when
//! several replicas (operators of one bot name, each with its own connection) need the memory at
//! the same instant; a failing preparer leaves the memory unprepared and the next access retries;
//! a restarted bot finds its memory prepared; `clear` starts over.

#[path = "support/redis_server.rs"]
mod redis_server;
#[macro_use]
#[path = "support/stores.rs"]
mod stores;

use memo_runtime::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use stores::Stores;

/// How often each preparer ran, by bot name (the two stores' tests run at once, under different
/// bot names).
static RUNS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn count_run(shared: &Shared) -> usize {
    let mut runs = RUNS.lock().unwrap();
    let count = runs
        .get_or_insert_with(HashMap::new)
        .entry(shared.bot().to_owned())
        .or_default();
    *count += 1;
    *count
}

fn runs(bot: &str) -> usize {
    RUNS.lock()
        .unwrap()
        .as_ref()
        .and_then(|runs| runs.get(bot).copied())
        .unwrap_or(0)
}

#[prepare_memory(component = "race")]
async fn prepare_race(shared: &Shared) -> memo_runtime::Result<()> {
    count_run(shared);
    // Slow on purpose: every replica asks while this one runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    shared.set("ready", true).await
}

#[prepare_memory(component = "flaky")]
async fn prepare_flaky(shared: &Shared) -> Result<(), String> {
    let attempt = count_run(shared);
    shared.set("half-written", attempt).await.map_err(|e| e.to_string())?;
    if attempt < 2 {
        return Err(format!("attempt {attempt} failed"));
    }
    shared.set("ready", true).await.map_err(|e| e.to_string())
}

#[handler(event = "Race", component = "race")]
async fn race_handler(shared: &Shared) -> memo_runtime::Result<()> {
    handled(shared).await
}

#[handler(event = "Flaky", component = "flaky")]
async fn flaky_handler(shared: &Shared) -> memo_runtime::Result<()> {
    handled(shared).await
}

/// Counts the handler's runs, and those that found the memory prepared.
async fn handled(shared: &Shared) -> memo_runtime::Result<()> {
    let ready = shared.get::<bool>("ready").await? == Some(true);
    shared
        .update("handled", |counts: &mut (u64, u64)| {
            counts.0 += 1;
            counts.1 += u64::from(ready);
        })
        .await?;
    Ok(())
}

fn event(kind: &str, name: &str) -> Event {
    Event::added(json!({
        "apiVersion": "kopf.dev/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")}
    }))
}

/// Runs one replica of `bot` over `events` until they are handled.
async fn run_replica(stores: &Stores, bot: &str, events: Vec<Event>) {
    let (sender, source) = memo_runtime::source::channel(16);
    let running = tokio::spawn(stores.operator(bot).await.workers(1).source(source).run());
    for event in events {
        sender.send(event).await.unwrap();
    }
    drop(sender);
    running.await.unwrap().unwrap();
}

on_both_stores!(
    racing_replicas_prepare_once_and_a_restart_does_not_prepare_again,
    a_failing_preparer_leaves_the_memory_unprepared_and_is_retried,
    a_clear_by_another_replica_makes_a_running_one_prepare_again,
);

async fn racing_replicas_prepare_once_and_a_restart_does_not_prepare_again(stores: Stores) {
    const REPLICAS: usize = 4;
    let bot = format!("race-{}", stores.label());
    let replicas: Vec<_> = (0..REPLICAS)
        .map(|n| {
            let (stores, bot) = (stores.clone(), bot.clone());
            tokio::spawn(async move { run_replica(&stores, &bot, vec![event("Race", &format!("r{n}"))]).await })
        })
        .collect();
    for replica in replicas {
        replica.await.unwrap();
    }
    assert_eq!(runs(&bot), 1, "one replica prepared, the others waited for it");
    let memory = stores.operator(&bot).await.workers(1).component_shared("race");
    assert_eq!(
        memory.get::<(u64, u64)>("handled").await.unwrap(),
        Some((REPLICAS as u64, REPLICAS as u64)),
        "every handler ran, each on a prepared memory"
    );

    // A restarted bot (a new operator, a new connection) finds its memory prepared.
    run_replica(&stores, &bot, vec![event("Race", "after-restart")]).await;
    assert_eq!(runs(&bot), 1);
    assert_eq!(memory.get::<(u64, u64)>("handled").await.unwrap(), Some((5, 5)));

    // `clear` starts over: the next access prepares again.
    memory.clear().await.unwrap();
    run_replica(&stores, &bot, vec![event("Race", "after-clear")]).await;
    assert_eq!(runs(&bot), 2);
    assert_eq!(memory.get::<(u64, u64)>("handled").await.unwrap(), Some((1, 1)));
}

async fn a_failing_preparer_leaves_the_memory_unprepared_and_is_retried(stores: Stores) {
    let bot = format!("flaky-{}", stores.label());
    let memory = stores.operator(&bot).await.workers(1).component_shared("flaky");
    run_replica(&stores, &bot, vec![event("Flaky", "f1")]).await;
    assert_eq!(runs(&bot), 1);
    assert_eq!(
        memory.get::<(u64, u64)>("handled").await.unwrap(),
        None,
        "not run on an unprepared memory"
    );
    assert_eq!(memory.get::<bool>("ready").await.unwrap(), None);

    // The next access (here, from another replica) retries, succeeds, and never runs it again.
    run_replica(&stores, &bot, vec![event("Flaky", "f2"), event("Flaky", "f3")]).await;
    assert_eq!(runs(&bot), 2);
    assert_eq!(memory.get::<(u64, u64)>("handled").await.unwrap(), Some((2, 2)));
}

async fn a_clear_by_another_replica_makes_a_running_one_prepare_again(stores: Stores) {
    let bot = format!("recheck-{}", stores.label());
    let (sender, source) = memo_runtime::source::channel(16);
    let running = tokio::spawn(stores.operator(&bot).await.workers(1).source(source).run());
    let other = stores.operator(&bot).await.workers(1).component_shared("race");

    sender.send(event("Race", "x1")).await.unwrap();
    handled_becomes(&other, (1, 1)).await;
    assert_eq!(runs(&bot), 1);

    other.clear().await.unwrap();
    // Past the second for which a replica trusts the store's "prepared" mark.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sender.send(event("Race", "x2")).await.unwrap();
    handled_becomes(&other, (1, 1)).await;
    assert_eq!(runs(&bot), 2, "the running replica prepared the cleared memory again");
    drop(sender);
    running.await.unwrap().unwrap();
}

/// Waits (10 s at most) until the handlers have counted `expected`.
async fn handled_becomes(memory: &Shared, expected: (u64, u64)) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = memory.get::<(u64, u64)>("handled").await.unwrap();
        if now == Some(expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "handled is {now:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A replica that died while preparing holds the preparation lease until it runs out; then
/// another replica takes over and prepares.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_preparer_is_taken_over_when_its_lease_runs_out() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let bot = "takeover";
    // What a replica killed in the middle of preparing leaves behind.
    let reply = server.command(&[
        "SET",
        "memo:takeover:component:race:preparing",
        "token-of-a-dead-replica",
        "PX",
        "1500",
    ]);
    assert_eq!(reply, "+OK\r\n");
    let stores = Stores::Redis(server.url());
    let replica = tokio::spawn({
        let stores = stores.clone();
        async move { run_replica(&stores, bot, vec![event("Race", "t1")]).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs(bot), 0, "the dead replica's lease still holds");
    tokio::time::timeout(Duration::from_secs(20), replica)
        .await
        .expect("the lease ran out and the replica took over")
        .unwrap();
    assert_eq!(runs(bot), 1);
    let memory = stores.operator(bot).await.workers(1).component_shared("race");
    assert_eq!(memory.get::<(u64, u64)>("handled").await.unwrap(), Some((1, 1)));
}

#[test]
fn handlers_registered() {
    assert_eq!(memo_runtime::registered_handler_count(), 2);
}
