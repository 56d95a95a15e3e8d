//! A fixed amount of work for instruction counts (`valgrind --tool=callgrind`), repeatable
//! whatever else the machine does: 100,000 events over 1,000 resources through an `Operator`
//! with `WORKERS` workers (default 1); the handler bumps a memo counter. `EVENTS` changes the
//! number of events (for `perf record`, which needs more).
//!
//! ```text
//! cargo build --release -p memo-bench --example profile_events
//! valgrind --tool=callgrind target/release/examples/profile_events
//! ```

use memo_runtime::prelude::*;
use serde_json::json;

#[handler(event = "Ping")]
fn ping(memo: &mut Memo) {
    match memo.get_mut::<u64>("count") {
        Some(count) => *count += 1,
        None => {
            memo.insert("count", 1u64);
        }
    }
}

fn main() {
    let workers: usize = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(1);
    let count: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let events: Vec<Event> = (0..count)
        .map(|n| {
            let resource = n % 10_000;
            Event::modified(json!({
                "apiVersion": "memo.dev/v1",
                "kind": "Ping",
                "metadata": {"name": format!("r{resource}"), "namespace": "default", "uid": format!("uid-{resource}")},
            }))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (sender, source) = memo_runtime::source::channel(1024);
        let run = tokio::spawn(
            Operator::new()
                .workers(workers)
                .handle_signals(false)
                .source(source)
                .run(),
        );
        for event in events {
            sender.send(event).await.expect("the operator reads");
        }
        drop(sender);
        run.await.expect("the operator ran").expect("no failure");
    });
}
