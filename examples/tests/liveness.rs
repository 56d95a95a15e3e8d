//! The `retries` example run with `--liveness 127.0.0.1:0` as a process: `/healthz` answers 200
//! while it runs, `/metrics` counts the events sent and the failures of its handler, and SIGTERM
//! stops it cleanly, server included.

mod processes;

use processes::scrape::get;
use processes::scrape::http_text::sample;
use processes::{PATIENCE, Process, watch_event};
use serde_json::json;
use std::time::{Duration, Instant};

/// The address the process logged for its endpoint (it asked for port 0).
fn endpoint(operator: &Process) -> String {
    operator.wait_for("liveness endpoint on http://");
    let stderr = operator.stderr();
    let (_, rest) = stderr.split_once("liveness endpoint on http://").unwrap();
    rest.split_once("/healthz").unwrap().0.to_owned()
}

/// Scrapes `/metrics` until `done` accepts it; panics with the last scrape after [`PATIENCE`].
fn scrape_until(address: &str, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (status, metrics) = get(address, "/metrics").expect("the endpoint answers");
        assert_eq!(status, 200, "{metrics}");
        if done(&metrics) {
            return metrics;
        }
        assert!(start.elapsed() < PATIENCE, "never came; the last scrape:\n{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn healthz_and_metrics_of_a_running_operator() {
    for workers in ["1", "2"] {
        let mut operator = Process::start("retries", &["--workers", workers, "--liveness", "127.0.0.1:0"], &[]);
        let address = endpoint(&operator);
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        let (status, body) = get(&address, "/healthz").expect("the endpoint answers");
        assert_eq!(status, 200, "{body}");

        // Two that succeed at once, one that fails once then succeeds, one refused for good.
        operator.write(&watch_event("ADDED", "Database", "db1", json!({})));
        operator.write(&watch_event("ADDED", "Database", "db2", json!({})));
        operator.write(&watch_event("ADDED", "Database", "flaky", json!({"flakes": 1})));
        operator.write(&watch_event("ADDED", "Database", "invalid", json!({"size": 0})));
        operator.write(&watch_event("MODIFIED", "Database", "db1", json!({"size": 2})));
        let handled = r#"memo_events_handled_total{kind="Database",type="ADDED"}"#;
        let metrics = scrape_until(&address, |text| sample(text, handled) == Some(4.0));
        let value = |series: &str| sample(&metrics, series).unwrap_or_else(|| panic!("no `{series}`:\n{metrics}"));
        assert_eq!(
            value(r#"memo_events_received_total{kind="Database",type="ADDED"}"#),
            4.0
        );
        assert_eq!(
            value(r#"memo_events_received_total{kind="Database",type="MODIFIED"}"#),
            1.0
        );
        assert_eq!(value(r#"memo_handler_calls_total{handler="retries::provision"}"#), 5.0);
        assert_eq!(
            value(r#"memo_handler_failures_total{handler="retries::provision"}"#),
            2.0
        );
        assert_eq!(
            value(r#"memo_handler_retries_total{handler="retries::provision"}"#),
            1.0
        );
        assert_eq!(
            value(r#"memo_handler_duration_seconds_count{handler="retries::provision"}"#),
            5.0
        );
        assert_eq!(value("memo_source_connected"), 1.0);
        let (status, _) = get(&address, "/healthz").unwrap();
        assert_eq!(status, 200);

        operator.signal("TERM");
        let status = operator.wait_exit();
        let stderr = operator.stderr();
        assert_eq!(status.code(), Some(0), "workers {workers}: {stderr}");
        assert!(get(&address, "/healthz").is_err(), "the endpoint outlived its process");
    }
}

#[test]
fn a_liveness_address_in_use_is_a_startup_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut operator = Process::start("retries", &["--liveness", &address], &[]);
    operator.write(&watch_event("ADDED", "Database", "db1", json!({})));
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot serve the liveness endpoint on {address}")),
        "{stderr}"
    );
    assert!(!stderr.contains("provisioned"), "a handler ran: {stderr}");
}

#[test]
fn a_malformed_liveness_address_is_a_bad_flag() {
    let mut operator = Process::start("retries", &["--liveness", "127.0.0.1:99999"], &[]);
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--liveness"), "{stderr}");
    assert!(stderr.contains("`99999` is not a port"), "{stderr}");
}
