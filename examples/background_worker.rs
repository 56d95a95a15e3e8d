//! A background thread fed through the operator memo: startup starts it and stores the sending
//! end of its channel; every resource memo is a shallow copy, so all resources share that one
//! sender. Each resource reports itself once (`is_seen` lives in its own memo). Cleanup takes the
//! thread's handle back, stops it, and joins it.
//!
//! ```text
//! cargo run -p memo-examples --example background_worker -- --source examples/data/kopfexamples.json
//! ```

use memo_runtime::prelude::*;
use std::sync::mpsc;
use std::thread::JoinHandle;

#[handler(startup)]
fn start_background_worker(memo: &mut Memo, logger: &Logger) {
    let (queue, items) = mpsc::channel::<String>();
    let thread = std::thread::spawn(move || {
        for item in items {
            println!("background worker: processing {item}");
        }
        println!("background worker: queue closed, exiting");
    });
    memo.insert("queue", queue);
    memo.insert("thread", thread);
    logger.info("background worker started");
}

#[handler(event = "KopfExample")]
fn push_once(memo: &mut Memo, name: &str, namespace: Option<&str>) -> Result<(), String> {
    if memo.contains_key("is_seen") {
        return Ok(());
    }
    memo.insert("is_seen", true);
    let queue = memo
        .get::<mpsc::Sender<String>>("queue")
        .ok_or("startup did not store the queue")?;
    queue
        .send(format!("{}/{name}", namespace.unwrap_or("-")))
        .map_err(|_| "the background worker is gone".to_owned())
}

#[handler(cleanup)]
fn stop_background_worker(memo: &mut Memo, logger: &Logger) -> memo_runtime::Result<()> {
    // Resource memos are gone by now, so the operator memo holds the only sender and handle.
    let queue: mpsc::Sender<String> = memo.take("queue").map_err(memo_runtime::Error::custom)?;
    drop(queue);
    let thread: JoinHandle<()> = memo.take("thread").map_err(memo_runtime::Error::custom)?;
    thread
        .join()
        .map_err(|_| memo_runtime::Error::custom("the background worker panicked"))?;
    logger.info("background worker stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
