//! A source that sends events of ever new kinds (which no handler selects) cannot grow the
//! operator: `/metrics` counts them under one `kind="other"` series, and memory stays flat.

mod processes;

use processes::scrape::get;
use processes::scrape::http_text::sample;
use processes::{PATIENCE, Process};
use std::time::{Duration, Instant};

fn endpoint(operator: &Process) -> String {
    operator.wait_for("liveness endpoint on http://");
    let stderr = operator.stderr();
    let (_, rest) = stderr.split_once("liveness endpoint on http://").unwrap();
    rest.split_once("/healthz").unwrap().0.to_owned()
}

/// Sends `count` events of kinds never seen before, numbered from `first`.
fn send_new_kinds(operator: &mut Process, first: u64, count: u64) {
    let mut batch = String::new();
    for n in first..first + count {
        batch.push_str(&format!(
            r#"{{"type":"ADDED","object":{{"apiVersion":"v1","kind":"Random{n:x}","metadata":{{"name":"x","namespace":"d","uid":"u{n}"}}}}}}"#
        ));
        batch.push('\n');
        if batch.len() > 64 * 1024 {
            operator.write(&batch);
            batch.clear();
        }
    }
    operator.write(&batch);
}

/// Waits until `/metrics` has counted `received` events of other kinds; returns its series.
fn series_once_counted(address: &str, received: f64) -> Vec<String> {
    let start = Instant::now();
    loop {
        let (status, metrics) = get(address, "/metrics").expect("the endpoint answers");
        assert_eq!(status, 200);
        if sample(&metrics, r#"memo_events_received_total{kind="other",type="ADDED"}"#) == Some(received) {
            return metrics
                .lines()
                .filter(|line| !line.starts_with('#'))
                .map(|line| line.rsplit_once(' ').map_or(line, |(series, _)| series).to_owned())
                .collect();
        }
        assert!(start.elapsed() < PATIENCE * 4, "never counted {received}:\n{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_hundred_thousand_new_kinds_leave_series_and_memory_flat() {
    let mut operator = Process::start("counter", &["--liveness", "127.0.0.1:0"], &[]);
    let address = endpoint(&operator);
    send_new_kinds(&mut operator, 0, 10_000);
    let before = series_once_counted(&address, 10_000.0);
    let rss_before = rss_kib(operator.pid());

    send_new_kinds(&mut operator, 10_000, 90_000);
    let after = series_once_counted(&address, 100_000.0);
    let rss_after = rss_kib(operator.pid());

    assert_eq!(before, after, "the same series after 90,000 more kinds");
    assert!(!after.iter().any(|series| series.contains("Random")), "{after:?}");
    // Before the fix this grew by over 60 MB (a series and a table entry per kind).
    assert!(
        rss_after < rss_before + 8 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    operator.close_stdin();
    assert_eq!(operator.wait_exit().code(), Some(0), "{}", operator.stderr());
}
