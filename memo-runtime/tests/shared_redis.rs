//! What only a Redis store has: a server that can be unreachable or restart, a key layout that
//! `redis-cli` reads, and leases that can be lost.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use memo_runtime::prelude::*;
use memo_runtime::store::RedisStore;
use redis_server::RedisServer;
use std::time::{Duration, Instant};

/// `times` increments of `n`, each the value it left.
async fn increments(shared: &Shared, times: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..times {
        seen.push(
            shared
                .update("n", |n: &mut u64| {
                    *n += 1;
                    *n
                })
                .await
                .unwrap(),
        );
    }
    seen
}

/// Waits for `tasks`, each returning what its increments of `n` saw, and checks that `n` ended at
/// `total` with every value from 1 to `total` seen exactly once: no increment lost or applied twice.
async fn each_applied_once(shared: &Shared, tasks: Vec<tokio::task::JoinHandle<Vec<u64>>>, total: u64) {
    let mut results = Vec::new();
    for task in tasks {
        results.extend(task.await.unwrap());
    }
    assert_eq!(shared.get::<u64>("n").await.unwrap(), Some(total));
    results.sort_unstable();
    assert_eq!(results, (1..=total).collect::<Vec<u64>>());
}

async fn shared(server: &RedisServer, bot: &str) -> Shared {
    let store = RedisStore::connect(&server.url()).await.unwrap();
    Operator::new().name(bot).store(store).shared()
}

#[tokio::test]
async fn connecting_to_a_dead_port_fails_soon_naming_the_url() {
    let url = redis_server::unreachable_url();
    let attempt = tokio::time::timeout(Duration::from_secs(10), RedisStore::connect(&url)).await;
    let err = attempt.expect("fails within a few seconds, no hang").unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");

    let err = RedisStore::connect("not a url").await.unwrap_err();
    assert!(err.to_string().contains("not a url"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_while_redis_is_down_and_succeed_once_it_is_back() {
    let Some(mut server) = RedisServer::start() else { return };
    let shared = shared(&server, "restarts").await;
    shared.set("n", 1u64).await.unwrap();

    server.stop();
    for call in 0..3 {
        let outcome = tokio::time::timeout(Duration::from_secs(10), shared.update("n", |n: &mut u64| *n += 1)).await;
        let err = outcome.expect("fails in bounded time").unwrap_err();
        assert!(matches!(err, Error::Store(_)), "call {call}: {err:?}");
        assert!(err.to_string().contains(&server.url()), "{err}");
    }
    let locked = tokio::time::timeout(Duration::from_secs(10), shared.lock("l")).await;
    assert!(locked.expect("fails in bounded time").is_err());

    // Back, empty (it keeps nothing): calls succeed again, with the same handle.
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match shared.set("n", 5u64).await {
            Ok(()) => break,
            Err(err) => assert!(Instant::now() < deadline, "still failing after Redis came back: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shared
            .update("n", |n: &mut u64| {
                *n += 1;
                *n
            })
            .await
            .unwrap(),
        6
    );
    let guard = shared.lock("l").await.unwrap();
    shared.set_fenced(&guard, "n", 7u64).await.unwrap();
    assert_eq!(shared.get::<u64>("n").await.unwrap(), Some(7));
}

#[tokio::test]
async fn values_are_json_text_under_the_documented_keys() {
    let Some(server) = RedisServer::start() else { return };
    let operator = Operator::new()
        .name("message-counter")
        .store(RedisStore::connect(&server.url()).await.unwrap());
    operator.shared().set("messages", 3u64).await.unwrap();
    operator
        .component_shared("per-name")
        .set("names", vec!["a", "b"])
        .await
        .unwrap();
    assert_eq!(
        server.command(&["GET", "memo:message-counter:bot:value:messages"]),
        "$1\r\n3\r\n"
    );
    assert_eq!(
        server.command(&["GET", "memo:message-counter:component:per-name:value:names"]),
        "$9\r\n[\"a\",\"b\"]\r\n"
    );
    // What redis-cli writes, a handler reads.
    server.command(&["SET", "memo:message-counter:bot:value:messages", "41"]);
    assert_eq!(
        operator
            .shared()
            .update("messages", |n: &mut u64| {
                *n += 1;
                *n
            })
            .await
            .unwrap(),
        42
    );
    server.command(&["SET", "memo:message-counter:bot:value:broken", "{not json"]);
    let err = operator.shared().get::<u64>("broken").await.unwrap_err();
    assert!(err.to_string().contains("`broken`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_write_after_the_lease_was_lost_is_refused_and_writes_nothing() {
    let Some(server) = RedisServer::start() else { return };
    let (holder, next) = (shared(&server, "fenced").await, shared(&server, "fenced").await);
    holder.set("config", "v1").await.unwrap();
    let stale = holder.lock("deploy").await.unwrap();
    holder.set_fenced(&stale, "config", "v2").await.unwrap();

    // The lease runs out while the holder is paused (here: its lease key goes away, as it does
    // when it expires), and another replica takes the lock.
    server.command(&["DEL", "memo:fenced:bot:lock:deploy"]);
    let current = next.lock("deploy").await.unwrap();
    assert!(current.fencing_token() > stale.fencing_token());
    next.set_fenced(&current, "config", "v3").await.unwrap();

    let err = holder.set_fenced(&stale, "config", "stale").await.unwrap_err();
    assert!(
        matches!(&err, Error::LeaseLost { lock, key } if lock == "deploy" && key == "config"),
        "{err:?}"
    );
    let err = holder
        .update_fenced(&stale, "config", |c: &mut String| c.push_str("-stale"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err:?}");
    let err = holder.set_fenced(&stale, "other", 1).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err:?}");
    assert_eq!(next.get::<String>("config").await.unwrap().as_deref(), Some("v3"));
    assert!(!next.contains("other").await.unwrap(), "nothing written");

    // The stale guard's release does not free the new holder's lock.
    assert!(!stale.unlock().await.unwrap(), "its lease had been lost");
    let waiting = tokio::time::timeout(Duration::from_millis(500), holder.lock("deploy")).await;
    assert!(waiting.is_err(), "the lock is still the new holder's");
    drop(current);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), holder.lock("deploy"))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_is_renewed_past_its_length() {
    let Some(server) = RedisServer::start() else { return };
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_lease(Duration::from_secs(1));
    let shared = Operator::new().name("renewed").store(store).shared();
    let guard = shared.lock("l").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    shared
        .set_fenced(&guard, "k", 1)
        .await
        .expect("the lease was renewed in the background");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_lock_does_not_flood_redis() {
    let Some(server) = RedisServer::start() else { return };
    let (holder, waiter) = (shared(&server, "patient").await, shared(&server, "patient").await);
    let guard = holder.lock("l").await.unwrap();
    server.command(&["CONFIG", "RESETSTAT"]);
    let waiting = tokio::spawn(async move { waiter.lock("l").await.map(|guard| guard.fencing_token()) });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = server.command(&["INFO", "commandstats"]);
    drop(guard);
    let token = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(token, 2);
    let tries: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0);
    // Backing off up to 100 ms makes some 15 tries in a second; spinning would make thousands.
    assert!(tries < 100, "{tries} tries in one second of waiting:\n{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_of_one_key_from_one_process_share_writes_and_none_is_lost() {
    let Some(server) = RedisServer::start() else { return };
    // Two processes' worth of handles: their writes conflict, and each process's own updates
    // are gathered.
    let (one, two) = (shared(&server, "gathered").await, shared(&server, "gathered").await);
    server.command(&["CONFIG", "RESETSTAT"]);
    let mut tasks = Vec::new();
    for task in 0..32 {
        let shared = if task % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { increments(&shared, 100).await }));
    }
    // Exactly one increment per call, and every call saw its own: the values returned are
    // 1..=3200, each once.
    each_applied_once(&one, tasks, 3200).await;
    let stats = server.command(&["INFO", "commandstats"]);
    let writes: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0);
    // Every write, refused ones included, without gathering: at least one per update (gathered:
    // some 400 here).
    assert!(
        writes > 0 && writes < 3200,
        "{writes} writes for 3,200 updates:\n{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_and_plain_updates_of_one_key_mixed_in_one_process_each_apply_once() {
    let Some(server) = RedisServer::start() else { return };
    let shared = shared(&server, "mixed").await;
    let guard = shared.lock("writer").await.unwrap();
    let fenced = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..200 {
                seen.push(
                    shared
                        .update_fenced(&guard, "n", |n: &mut u64| {
                            *n += 1;
                            *n
                        })
                        .await
                        .unwrap(),
                );
            }
            seen
        })
    };
    let mut tasks = vec![fenced];
    for _ in 0..16 {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move { increments(&shared, 100).await }));
    }
    each_applied_once(&shared, tasks, 1800).await;
}
