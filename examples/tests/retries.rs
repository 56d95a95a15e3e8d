//! The `retries` example as a process: transient failures retried with backoff until success,
//! a permanent one not retried, and a SIGTERM while a retry is scheduled a minute away: the
//! process exits at once, saying it dropped the retry.

mod processes;

use processes::{Process, watch_event};
use serde_json::json;

#[test]
fn transient_failures_are_retried_and_a_permanent_one_is_not() {
    let mut operator = Process::start("retries", &["--workers", "2"], &[]);
    operator.write(&watch_event("ADDED", "Database", "flaky", json!({"flakes": 2})));
    operator.write(&watch_event("ADDED", "Database", "invalid", json!({"size": 0})));
    operator.wait_for("provisioned after 3 tries");
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("failed temporarily: connection reset").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("succeeded after 2 retries"), "{stderr}");
    assert_eq!(
        stderr.matches("failed permanently: spec.size must be positive").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("name=\"invalid\""), "{stderr}");
}

#[test]
fn sigterm_does_not_wait_for_a_scheduled_retry() {
    for workers in ["1", "2"] {
        let mut operator = Process::start("retries", &["--workers", workers], &[]);
        operator.write(&watch_event("ADDED", "Database", "db", json!({"restarting": true})));
        operator.wait_for("retrying in 60.0s");
        operator.signal("TERM");
        // The retry is a minute away, past `wait_exit`'s patience: the stop must not wait for it.
        let status = operator.wait_exit();
        let stderr = operator.stderr();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("stopping: 1 scheduled retry dropped"),
            "workers {workers}: {stderr}"
        );
        assert!(stderr.contains("stopped: SIGTERM received"), "{stderr}");
    }
}
