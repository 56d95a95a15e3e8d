//! A failing handler (an `Err` or a panic) is logged and does not stop the operator; invalid
//! events are rejected with a log, never a panic.

mod common;

use common::*;
use memo_runtime::prelude::*;

#[path = "common/failing.rs"]
mod failing;

#[tokio::test]
async fn errors_and_panics_are_contained() {
    for workers in [1, 2] {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let events = vec![
            Event::added(example("bad", "u-1")),
            Event::added(example("boom", "u-2")),
            Event::added(serde_json::json!({"metadata": {"name": "no-kind"}})),
            Event::added(serde_json::json!({"kind": "KopfExample", "metadata": {}})),
            Event::added(serde_json::json!("not even an object")),
            Event::modified(example("boom", "u-2")),
            Event::added(example("good", "u-3")),
        ];
        run_events(memo, workers, events).await.unwrap();
        let mut log = entries(&log);
        log.sort();
        assert_eq!(log, ["bad", "boom", "boom", "good"], "workers = {workers}");
    }
}
