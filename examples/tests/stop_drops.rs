//! Events waiting behind a scheduled retry are counted as dropped by a stop, the same at one
//! worker as at two: the engine makes that decision in one place.

mod processes;

use processes::{Process, watch_event};
use serde_json::json;

#[test]
fn events_behind_a_retry_are_counted_as_dropped_at_one_and_two_workers() {
    for workers in ["1", "2"] {
        let mut operator = Process::start("retries", &["--workers", workers], &[]);
        operator.write(&watch_event("ADDED", "Database", "db", json!({"restarting": true})));
        operator.wait_for("retrying in 60.0s");
        operator.write(&watch_event("MODIFIED", "Database", "db", json!({"size": 1})));
        operator.write(&watch_event("MODIFIED", "Database", "db", json!({"size": 2})));
        // Both are read and held behind the retry before the stop.
        std::thread::sleep(std::time::Duration::from_millis(300));
        operator.signal("TERM");
        let status = operator.wait_exit();
        let stderr = operator.stderr();
        assert_eq!(status.code(), Some(0), "{workers} worker(s): {stderr}");
        assert!(
            stderr.contains("2 event(s) read but not started were dropped"),
            "{workers} worker(s): {stderr}"
        );
        assert!(
            stderr.contains("1 scheduled retry dropped"),
            "{workers} worker(s): {stderr}"
        );
    }
}
