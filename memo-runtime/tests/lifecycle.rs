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
    assert_eq!(log.first().map(String::as_str), Some("startup"));
    assert_eq!(log[log.len() - 2..], ["cleanup", "joined"]);
    let mut middle = log[1..log.len() - 2].to_vec();
    middle.sort();
    assert_eq!(middle, ["create a", "create b", "thread got a", "thread got b"]);
}
