//! One shared-memory test suite, run against both stores: the in-process store, and Redis (a
//! `redis-server` of each test's own; feature `redis`). Each "replica" of a bot is an `Operator`
//! of its own — for Redis, with a connection of its own — so what passes here holds across
//! processes.

#[path = "support/redis_server.rs"]
mod redis_server;
#[macro_use]
#[path = "support/stores.rs"]
mod stores;

use memo_runtime::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use stores::Stores;

on_both_stores!(
    get_set_update_remove_contains_keys,
    wrong_type_reads_are_errors_naming_key_and_type,
    non_finite_floats_are_refused,
    tasks_times_updates_are_exact,
    lock_get_set_is_exact,
    bots_and_components_are_isolated,
    clear_removes_everything_of_one_memory,
    fencing_tokens_strictly_increase,
    fenced_writes_need_a_guard_of_the_same_memory,
);

async fn get_set_update_remove_contains_keys(stores: Stores) {
    let shared = stores.shared("basics").await;
    assert_eq!(shared.get::<u64>("n").await.unwrap(), None);
    assert!(!shared.contains("n").await.unwrap());
    shared.set("n", 41u64).await.unwrap();
    assert_eq!(
        shared
            .update("n", |n: &mut u64| {
                *n += 1;
                *n
            })
            .await
            .unwrap(),
        42
    );
    assert_eq!(shared.get::<u64>("n").await.unwrap(), Some(42));
    let started = shared
        .update("fresh", |v: &mut Vec<String>| {
            v.push("a".into());
            v.len()
        })
        .await
        .unwrap();
    assert_eq!(started, 1, "a missing key starts from the default");
    let map: BTreeMap<String, f64> = [("pi".to_owned(), 3.25)].into();
    shared.set("map", &map).await.unwrap();
    assert_eq!(shared.get::<BTreeMap<String, f64>>("map").await.unwrap(), Some(map));
    shared.set("with:colon*and?glob", true).await.unwrap();
    assert_eq!(
        shared.keys().await.unwrap(),
        ["fresh", "map", "n", "with:colon*and?glob"]
    );
    assert!(shared.contains("n").await.unwrap());
    assert!(shared.remove("n").await.unwrap());
    assert!(!shared.remove("n").await.unwrap());
    assert!(!shared.contains("n").await.unwrap());
    assert_eq!(shared.keys().await.unwrap(), ["fresh", "map", "with:colon*and?glob"]);
    // Another replica of the same bot sees the same memory.
    let replica = stores.shared("basics").await;
    assert_eq!(replica.get::<bool>("with:colon*and?glob").await.unwrap(), Some(true));
}

async fn wrong_type_reads_are_errors_naming_key_and_type(stores: Stores) {
    let shared = stores.shared("types").await;
    shared.set("messages", "not a number").await.unwrap();
    let err = shared.get::<u64>("messages").await.unwrap_err();
    assert!(
        matches!(&err, Error::SharedType { key, type_name, .. } if key == "messages" && *type_name == "u64"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("shared memory key `messages` cannot be used as a `u64`"),
        "{err}"
    );
    let err = shared.update("messages", |n: &mut u64| *n += 1).await.unwrap_err();
    assert!(
        err.to_string().contains("`messages`") && err.to_string().contains("u64"),
        "{err}"
    );
    assert_eq!(
        shared.get::<String>("messages").await.unwrap().as_deref(),
        Some("not a number"),
        "nothing lost"
    );
}

async fn non_finite_floats_are_refused(stores: Stores) {
    let shared = stores.shared("floats").await;
    let err = shared.set("ratio", f64::NAN).await.unwrap_err();
    assert!(
        matches!(&err, Error::SharedType { key, .. } if key == "ratio"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("`ratio`") && err.to_string().contains("NaN"),
        "{err}"
    );
    let nested = BTreeMap::from([("a", vec![Some(1.0), None, Some(f64::INFINITY)])]);
    assert!(shared.set("nested", &nested).await.is_err());
    assert!(
        shared
            .update("ratio", |x: &mut f64| *x = f64::NEG_INFINITY)
            .await
            .is_err()
    );
    assert!(shared.keys().await.unwrap().is_empty(), "nothing was written");
    // A `null` that is really a `None` is fine.
    shared.set("maybe", vec![Some(1.5), None]).await.unwrap();
    assert_eq!(
        shared.get::<Vec<Option<f64>>>("maybe").await.unwrap(),
        Some(vec![Some(1.5), None])
    );
}

async fn tasks_times_updates_are_exact(stores: Stores) {
    const REPLICAS: usize = 3;
    const TASKS: usize = 8;
    const UPDATES: usize = 100;
    let mut tasks = Vec::new();
    for _ in 0..REPLICAS {
        let shared = stores.shared("updates").await;
        for _ in 0..TASKS {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..UPDATES {
                    shared.update("n", |n: &mut u64| *n += 1).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let shared = stores.shared("updates").await;
    assert_eq!(
        shared.get::<u64>("n").await.unwrap(),
        Some((REPLICAS * TASKS * UPDATES) as u64)
    );
}

async fn lock_get_set_is_exact(stores: Stores) {
    const REPLICAS: usize = 2;
    const TASKS: usize = 3;
    const CYCLES: usize = 30;
    let mut tasks = Vec::new();
    for _ in 0..REPLICAS {
        let shared = stores.shared("locked").await;
        for _ in 0..TASKS {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..CYCLES {
                    let guard = shared.lock("counter").await.unwrap();
                    let n: u64 = shared.get("n").await.unwrap().unwrap_or(0);
                    // Yield while holding the lock, so that an unprotected read-modify-write would
                    // lose writes.
                    tokio::task::yield_now().await;
                    shared.set("n", n + 1).await.unwrap();
                    guard.release();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let shared = stores.shared("locked").await;
    assert_eq!(
        shared.get::<u64>("n").await.unwrap(),
        Some((REPLICAS * TASKS * CYCLES) as u64)
    );
}

async fn bots_and_components_are_isolated(stores: Stores) {
    let a = stores.operator("bot-a").await;
    let b = stores.operator("bot-b").await;
    let (a_bot, a_component, b_bot) = (a.shared(), a.component_shared("per-name"), b.shared());
    a_bot.set("owner", "a").await.unwrap();
    a_component.set("owner", "a/per-name").await.unwrap();
    b_bot.set("owner", "b").await.unwrap();
    assert_eq!(a_bot.get::<String>("owner").await.unwrap().as_deref(), Some("a"));
    assert_eq!(
        a_component.get::<String>("owner").await.unwrap().as_deref(),
        Some("a/per-name")
    );
    assert_eq!(b_bot.get::<String>("owner").await.unwrap().as_deref(), Some("b"));
    assert_eq!(
        b.component_shared("per-name").keys().await.unwrap(),
        Vec::<String>::new()
    );
    // A bot name that looks like another bot's component reaches nothing of it.
    let sneaky = stores.shared("bot-a:component:per-name").await;
    assert_eq!(sneaky.keys().await.unwrap(), Vec::<String>::new());

    // Locks of the same name in different memories are different locks.
    let _held = a_bot.lock("update").await.unwrap();
    for other in [&a_component, &b_bot] {
        let taken = tokio::time::timeout(Duration::from_secs(10), other.lock("update")).await;
        assert!(taken.is_ok(), "another memory's lock of the same name does not wait");
    }
    let same = tokio::time::timeout(Duration::from_millis(300), stores.shared("bot-a").await.lock("update")).await;
    assert!(same.is_err(), "the same bot's lock is held, also for another replica");
}

async fn clear_removes_everything_of_one_memory(stores: Stores) {
    let operator = stores.operator("clearing").await;
    let (bot, component) = (operator.shared(), operator.component_shared("c"));
    bot.set("a", 1).await.unwrap();
    bot.set("b", 2).await.unwrap();
    component.set("a", 3).await.unwrap();
    let other = stores.shared("other-bot").await;
    other.set("a", 4).await.unwrap();
    let before = bot.lock("l").await.unwrap().fencing_token();
    bot.clear().await.unwrap();
    assert!(bot.keys().await.unwrap().is_empty());
    assert_eq!(bot.get::<u64>("a").await.unwrap(), None);
    assert_eq!(component.keys().await.unwrap(), ["a"], "the component's memory stays");
    assert_eq!(
        other.get::<u64>("a").await.unwrap(),
        Some(4),
        "the other bot's memory stays"
    );
    let after = bot.lock("l").await.unwrap().fencing_token();
    assert!(
        after > before,
        "fencing tokens keep increasing across a clear: {before} then {after}"
    );
}

async fn fencing_tokens_strictly_increase(stores: Stores) {
    let replicas = [stores.shared("fencing").await, stores.shared("fencing").await];
    let mut last = 0;
    for round in 0..6 {
        let guard = replicas[round % 2].lock("deploy").await.unwrap();
        assert!(guard.fencing_token() > last, "{} after {last}", guard.fencing_token());
        assert_eq!(guard.name(), "deploy");
        last = guard.fencing_token();
        if round % 2 == 0 {
            assert!(guard.unlock().await.unwrap(), "the lease was still held");
        }
    }
}

async fn fenced_writes_need_a_guard_of_the_same_memory(stores: Stores) {
    let operator = stores.operator("fenced").await;
    let (bot, component) = (operator.shared(), operator.component_shared("c"));
    let guard = bot.lock("l").await.unwrap();
    bot.set_fenced(&guard, "k", 1u64).await.unwrap();
    assert_eq!(
        bot.update_fenced(&guard, "k", |n: &mut u64| {
            *n += 1;
            *n
        })
        .await
        .unwrap(),
        2
    );
    assert_eq!(bot.get::<u64>("k").await.unwrap(), Some(2));
    let err = component.set_fenced(&guard, "k", 5u64).await.unwrap_err();
    assert!(err.to_string().contains("belongs to the shared memory of"), "{err}");
    assert_eq!(component.get::<u64>("k").await.unwrap(), None);
    let err = bot.set_fenced(&guard, "nan", f64::NAN).await.unwrap_err();
    assert!(err.to_string().contains("`nan`"), "{err}");
}

#[test]
fn no_handlers_here() {
    assert_eq!(memo_runtime::registered_handler_count(), 0);
}
