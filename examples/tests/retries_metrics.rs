//! Pending retries show in `/metrics` as `memo_retries_scheduled`: up while a failed handler
//! waits for its time, down when the resource's deletion cancels it, at one worker and at two.

mod processes;

use processes::scrape::get;
use processes::scrape::http_text::sample;
use processes::{PATIENCE, Process, watch_event};
use serde_json::json;
use std::time::{Duration, Instant};

fn endpoint(operator: &Process) -> String {
    operator.wait_for("liveness endpoint on http://");
    let stderr = operator.stderr();
    let (_, rest) = stderr.split_once("liveness endpoint on http://").unwrap();
    rest.split_once("/healthz").unwrap().0.to_owned()
}

fn wait_for_gauge(address: &str, value: f64) {
    let start = Instant::now();
    loop {
        let (_, metrics) = get(address, "/metrics").expect("the endpoint answers");
        if sample(&metrics, "memo_retries_scheduled") == Some(value) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "memo_retries_scheduled never became {value}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn scheduled_retries_are_a_gauge() {
    for workers in ["1", "2"] {
        let mut operator = Process::start("retries", &["--workers", workers, "--liveness", "127.0.0.1:0"], &[]);
        let address = endpoint(&operator);
        wait_for_gauge(&address, 0.0);
        // Each asks to be retried in a minute.
        operator.write(&watch_event("ADDED", "Database", "a", json!({"restarting": true})));
        operator.write(&watch_event("ADDED", "Database", "b", json!({"restarting": true})));
        wait_for_gauge(&address, 2.0);
        operator.write(&watch_event("DELETED", "Database", "a", json!({"restarting": true})));
        wait_for_gauge(&address, 1.0);
        operator.signal("TERM");
        assert_eq!(operator.wait_exit().code(), Some(0), "{}", operator.stderr());
    }
}
