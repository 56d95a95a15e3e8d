//! Sync handlers that block do not freeze the runtime: with two of them blocked on a two-thread
//! runtime (as many as there are core threads), another resource's event is still handled and
//! a timer still fires. Before handlers ran on threads of their own, both stood still until the
//! blocked handlers returned.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Opened by the test once it saw the other work done; the blocked handlers wait for it.
static GATE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
static BLOCKED: AtomicUsize = AtomicUsize::new(0);
static TICKS: AtomicUsize = AtomicUsize::new(0);

#[handler(create = "Blocker")]
fn block(memo: &Memo, name: &str) {
    BLOCKED.fetch_add(1, Ordering::SeqCst);
    let (open, opened) = &GATE;
    let guard = open.lock().unwrap();
    // Bounded, so that a regression fails the test instead of hanging it.
    let (guard, _) = opened
        .wait_timeout_while(guard, Duration::from_secs(20), |open| !*open)
        .unwrap();
    push(memo, format!("{name} released: {}", *guard));
}

#[handler(create = "Free")]
fn free(memo: &Memo, name: &str) {
    push(
        memo,
        format!("{name} handled while {} blocked", BLOCKED.load(Ordering::SeqCst)),
    );
}

#[handler(timer = "Free", interval = "10ms")]
fn tick() {
    TICKS.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_sync_handlers_leave_other_resources_and_timers_running() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let (events, running) = spawn_operator(memo, 8);
    for name in ["b1", "b2"] {
        events
            .send(Event::added(object("Blocker", name, Some("d"), None)))
            .await
            .unwrap();
    }
    while BLOCKED.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    events
        .send(Event::added(object("Free", "f1", Some("d"), None)))
        .await
        .unwrap();
    // Both blockers hold their threads until the gate opens: the free resource and its timer
    // must get through meanwhile.
    let waited = tokio::time::timeout(Duration::from_secs(15), async {
        while !(entries(&log).iter().any(|e| e.starts_with("f1 handled")) && TICKS.load(Ordering::SeqCst) >= 3) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    {
        let (open, opened) = &GATE;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
    assert!(
        waited.is_ok(),
        "the free resource or its timer froze behind blocked handlers: {:?}",
        entries(&log)
    );
    drop(events);
    running.await.unwrap().unwrap();
    let log = entries(&log);
    assert!(log.contains(&"f1 handled while 2 blocked".to_owned()), "{log:?}");
    assert!(
        log.contains(&"b1 released: true".to_owned()) && log.contains(&"b2 released: true".to_owned()),
        "{log:?}"
    );
}
