//! One resource's handlers run one at a time and in event order; different resources run
//! concurrently, at most `workers` at once.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Gauge {
    running: AtomicUsize,
    peak: AtomicUsize,
    per_resource: Mutex<HashMap<String, usize>>,
}

#[handler(event = "KopfExample")]
async fn track(memo: &mut Memo, name: &str, body: &serde_json::Value) {
    let gauge = Arc::clone(memo.get::<Arc<Gauge>>("gauge").unwrap());
    let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
    gauge.peak.fetch_max(now, Ordering::SeqCst);
    {
        let mut per_resource = gauge.per_resource.lock().unwrap();
        let running_here = per_resource.entry(name.to_owned()).or_default();
        *running_here += 1;
        assert_eq!(*running_here, 1, "two handlers of {name} ran at once");
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    let sequence = body["spec"]["seq"].as_u64().unwrap();
    let previous = memo.get::<u64>("last").copied();
    memo.insert("last", sequence);
    push(memo, format!("{name} {sequence} after {previous:?}"));
    *gauge.per_resource.lock().unwrap().get_mut(name).unwrap() -= 1;
    gauge.running.fetch_sub(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_resource_order_with_bounded_concurrency_across_resources() {
    const RESOURCES: u64 = 12;
    const EVENTS_EACH: u64 = 10;
    const WORKERS: usize = 4;
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let gauge = Arc::new(Gauge::default());
    memo.insert("gauge", Arc::clone(&gauge));
    let mut events = Vec::new();
    for seq in 0..EVENTS_EACH {
        for resource in 0..RESOURCES {
            let mut object = example(&format!("r{resource}"), &format!("u{resource}"));
            object["spec"]["seq"] = seq.into();
            events.push(if seq == 0 {
                Event::added(object)
            } else {
                Event::modified(object)
            });
        }
    }
    run_events(memo, WORKERS, events).await.unwrap();

    let log = entries(&log);
    assert_eq!(log.len() as u64, RESOURCES * EVENTS_EACH);
    for resource in 0..RESOURCES {
        let history: Vec<&String> = log.iter().filter(|e| e.starts_with(&format!("r{resource} "))).collect();
        for (seq, entry) in history.iter().enumerate() {
            let previous = if seq == 0 {
                "None".to_owned()
            } else {
                format!("Some({})", seq - 1)
            };
            assert_eq!(**entry, format!("r{resource} {seq} after {previous}"));
        }
    }
    let peak = gauge.peak.load(Ordering::SeqCst);
    assert!(peak > 1, "different resources should overlap, peak was {peak}");
    assert!(peak <= WORKERS, "at most {WORKERS} at once, peak was {peak}");
}
