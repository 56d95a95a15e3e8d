//! A shared write's outcome is what the call says, against a real `redis-server` paused with
//! SIGSTOP while writes are in flight: `Ok` means applied once, an error that is not
//! outcome-unknown means not applied, and only an outcome-unknown error leaves it open.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use memo_runtime::prelude::*;
use memo_runtime::store::RedisStore;
use redis_server::RedisServer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What became of each attempt, by its id.
#[derive(Default)]
struct Attempts {
    applied: Vec<u64>,
    not_applied: Vec<u64>,
    unknown: Vec<u64>,
    /// The longest call: a call that spanned the pause took longer than the store's wait for a
    /// reply, so its reply was lost and its outcome had to be asked for.
    longest: Duration,
}

/// `tasks` tasks over two stores (two connections, as two processes would have) each make
/// `updates` logical updates of one list, every attempt appending its own id; a failed attempt
/// whose outcome is known is tried again, an outcome-unknown one is not. Meanwhile the server is
/// paused for `pause`, once the writes are flowing.
async fn run(
    server: &RedisServer,
    bot: &str,
    timeout: Duration,
    pause: Duration,
    tasks: u64,
    updates: u64,
) -> (Attempts, Vec<u64>) {
    let mut handles = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::connect(&server.url()).await.unwrap().with_timeout(timeout);
        handles.push(Operator::new().name(bot).store(store).shared());
    }
    let attempts = Arc::new(Mutex::new(Attempts::default()));
    let started = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = Vec::new();
    for task in 0..tasks {
        let shared = handles[(task % 2) as usize].clone();
        let (attempts, started) = (Arc::clone(&attempts), Arc::clone(&started));
        workers.push(tokio::spawn(async move {
            for update in 0..updates {
                for attempt in 0u64.. {
                    let id = task * 1_000_000 + update * 1_000 + attempt;
                    started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let begun = Instant::now();
                    let outcome = shared.update("seen", |seen: &mut Vec<u64>| seen.push(id)).await;
                    let mut attempts = attempts.lock().unwrap();
                    attempts.longest = attempts.longest.max(begun.elapsed());
                    match outcome {
                        Ok(()) => {
                            attempts.applied.push(id);
                            break;
                        }
                        Err(err) if err.is_outcome_unknown() => {
                            attempts.unknown.push(id);
                            break;
                        }
                        Err(err) => {
                            assert!(matches!(err, Error::Store(_)), "{err:?}");
                            attempts.not_applied.push(id);
                        }
                    }
                }
            }
        }));
    }
    // Pause once a tenth of the writes are through, so that writes are in flight on both
    // connections.
    while started.load(std::sync::atomic::Ordering::Relaxed) < tasks * updates / 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.freeze();
    tokio::time::sleep(pause).await;
    server.thaw();
    for worker in workers {
        worker.await.expect("a writer panicked");
    }
    let seen: Vec<u64> = handles[0].get("seen").await.unwrap().unwrap_or_default();
    let attempts = Arc::into_inner(attempts).unwrap().into_inner().unwrap();
    (attempts, seen)
}

fn occurrences(seen: &[u64]) -> HashMap<u64, usize> {
    let mut counted = HashMap::new();
    for id in seen {
        *counted.entry(*id).or_insert(0) += 1;
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_around_a_pause_shorter_than_the_call_are_applied_exactly_once() {
    let Some(server) = RedisServer::start() else { return };
    // The default timeout (3 s): replies are waited for 2 s, then the outcome is asked for.
    let (tasks, updates) = (8, 40);
    let (attempts, seen) = run(
        &server,
        "exact",
        Duration::from_secs(3),
        Duration::from_millis(2_600),
        tasks,
        updates,
    )
    .await;
    assert!(
        attempts.longest >= Duration::from_secs(2),
        "no call spanned the pause ({:?}): the test did not pause writes in flight",
        attempts.longest
    );
    assert!(attempts.unknown.is_empty(), "outcome unknown: {:?}", attempts.unknown);
    assert_eq!(seen.len() as u64, tasks * updates, "N x M updates, exactly");
    let counted = occurrences(&seen);
    for id in &attempts.applied {
        assert_eq!(counted.get(id), Some(&1), "attempt {id} returned Ok");
    }
    for id in &attempts.not_applied {
        assert_eq!(counted.get(id), None, "attempt {id} failed, yet was applied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_longer_than_the_call_gives_outcome_unknown_and_nothing_else_lies() {
    let Some(server) = RedisServer::start() else { return };
    // Calls give up after 0.3 s + 0.3 s of asking; the server stays paused for 2 s.
    let (tasks, updates) = (6, 30);
    let (attempts, seen) = run(
        &server,
        "unknown",
        Duration::from_millis(300),
        Duration::from_secs(2),
        tasks,
        updates,
    )
    .await;
    assert!(!attempts.unknown.is_empty(), "no call outlived the pause");
    let counted = occurrences(&seen);
    for id in &attempts.applied {
        assert_eq!(counted.get(id), Some(&1), "attempt {id} returned Ok");
    }
    for id in &attempts.not_applied {
        assert_eq!(
            counted.get(id),
            None,
            "attempt {id} failed without outcome-unknown, yet was applied"
        );
    }
    for id in &attempts.unknown {
        assert!(counted.get(id).copied().unwrap_or(0) <= 1, "attempt {id} applied twice");
    }
    // Every logical update is in the list once, unless its last attempt's outcome is unknown.
    let expected_at_least = (tasks * updates) as usize - attempts.unknown.len();
    assert!(seen.len() >= expected_at_least && seen.len() <= (tasks * updates) as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_fenced_writes_across_a_pause_report_what_happened() {
    let Some(server) = RedisServer::start() else { return };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let shared = Operator::new().name("fenced").store(store).shared();
    let guard = Arc::new(shared.lock("l").await.unwrap());
    // Read once before the pause: the update during it is a single write, no read.
    shared
        .update_fenced(&guard, "counter", |n: &mut u64| *n += 1)
        .await
        .unwrap();
    // Paused before the writes are sent, for longer than a reply is waited for (2 s).
    server.freeze();
    let set = tokio::spawn({
        let shared = shared.clone();
        async move { shared.set("plain", 7u64).await }
    });
    let fenced = tokio::spawn({
        let (shared, guard) = (shared.clone(), Arc::clone(&guard));
        async move { shared.set_fenced(&guard, "fenced", 8u64).await }
    });
    let updated = tokio::spawn({
        let (shared, guard) = (shared.clone(), Arc::clone(&guard));
        async move { shared.update_fenced(&guard, "counter", |n: &mut u64| *n += 1).await }
    });
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.thaw();
    let (set, fenced, updated) = (set.await.unwrap(), fenced.await.unwrap(), updated.await.unwrap());
    assert!(set.is_ok(), "{set:?}");
    assert!(fenced.is_ok(), "{fenced:?}");
    assert!(updated.is_ok(), "{updated:?}");
    assert_eq!(shared.get::<u64>("plain").await.unwrap(), Some(7));
    assert_eq!(shared.get::<u64>("fenced").await.unwrap(), Some(8));
    assert_eq!(shared.get::<u64>("counter").await.unwrap(), Some(2));
}
