//! Startup handlers run on the operator memo before any event; cleanup handlers run after the
//! last one, when every resource memo is gone, and can take back what startup stored.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

#[handler(startup)]
async fn start_worker(memo: &mut Memo, logger: &Logger) {
    // An async startup that takes a while: events must still wait for it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (sender, receiver) = mpsc::channel::<String>();
    let log = memo.get::<Log>("log").unwrap().clone();
    let thread = std::thread::spawn(move || {
        for item in receiver {
            log.lock().unwrap().push(format!("thread got {item}"));
        }
    });
    memo.insert("queue", sender);
    memo.insert("thread", thread);
    logger.info("background thread started");
    push(memo, "startup");
}

#[handler(create = "KopfExample")]
fn enqueue(memo: &mut Memo, name: &str) {
    push(memo, format!("create {name}"));
    memo.get::<mpsc::Sender<String>>("queue")
        .expect("startup ran first")
        .send(name.to_owned())
        .unwrap();
}

#[handler(cleanup)]
fn stop_worker(memo: &mut Memo) {
    push(memo, "cleanup");
    let queue: mpsc::Sender<String> = memo.take("queue").expect("no resource memo shares the sender any more");
    drop(queue);
    let thread: JoinHandle<()> = memo.take("thread").expect("the join handle can be taken back");
    thread.join().unwrap();
    push(memo, "joined");
}

#[tokio::test]
async fn startup_before_events_and_cleanup_after() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    run_events(
        memo,
        2,
        vec![Event::added(example("a", "u-a")), Event::added(example("b", "u-b"))],
    )
    .await
    .unwrap();
    let log = entries(&log);
    let position = |entry: &str| {
        log.iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("no {entry:?} in {log:?}"))
    };
    assert_eq!(position("startup"), 0, "{log:?}");
    assert_eq!(position("joined"), log.len() - 1, "{log:?}");
    assert!(
        position("cleanup") > position("create a").max(position("create b")),
        "{log:?}"
    );
    // The thread runs on its own; it only has to be done before it is joined.
    assert!(position("thread got a") < position("joined") && position("thread got b") < position("joined"));
    assert_eq!(log.len(), 7, "{log:?}");
}
