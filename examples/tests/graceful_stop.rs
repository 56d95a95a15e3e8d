//! How operators stop, run as real processes and stopped with real signals: a silent standard
//! input or FIFO does not hold the process, a stuck handler is abandoned after the shutdown
//! timeout, a second signal stops at once, a failed source or startup handler exits non-zero.

mod processes;

use processes::{Process, watch_event};
use serde_json::json;

fn sleeper(name: &str, spec: serde_json::Value) -> String {
    watch_event("ADDED", "Sleeper", name, spec)
}

fn kopf_example(name: &str) -> String {
    watch_event("ADDED", "KopfExample", name, json!({}))
}

#[test]
fn sigterm_ends_a_process_reading_a_silent_stdin() {
    let mut counter = Process::start("counter", &["--workers", "2"], &[]);
    counter.write(&kopf_example("ex1"));
    counter.wait_for("pinged: 1 event(s) so far");
    // Standard input stays open and silent: the process must not wait for its next byte.
    counter.signal("TERM");
    let status = counter.wait_exit();
    let stderr = counter.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("reading watch events from standard input"), "{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(stderr.contains("stopped: SIGTERM received"), "{stderr}");
}

#[test]
fn sigterm_ends_a_process_reading_a_silent_fifo() {
    let dir = std::env::temp_dir().join(format!("memo-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("events");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let counter = Process::start("counter", &["--workers", "1", "--source", fifo.to_str().unwrap()], &[]);
    // Opening for writing waits for the operator to open the FIFO for reading.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    std::io::Write::write_all(&mut writer, kopf_example("ex1").as_bytes()).unwrap();
    counter.wait_for("pinged: 1 event(s) so far");
    let mut counter = counter;
    counter.signal("TERM");
    let status = counter.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", counter.stderr());
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sync handler blocked for ten minutes and an async one waiting as long: after the shutdown
/// timeout both are abandoned and named, queued events are dropped and counted, cleanup runs.
#[test]
fn stuck_handlers_are_abandoned_after_the_shutdown_timeout() {
    let mut operator = Process::start("graceful_stop", &["--workers", "2", "--shutdown-timeout", "1s"], &[]);
    operator.write(&sleeper("blocked", json!({"blockSeconds": 600})));
    operator.write(&sleeper("waiting", json!({"waitSeconds": 600})));
    operator.wait_for("blocking for 600 s");
    operator.wait_for("waiting for 600 s");
    // Three more events of a busy resource: read, queued behind it, never started.
    for _ in 0..3 {
        operator.write(&watch_event("MODIFIED", "Sleeper", "blocked", json!({})));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    operator.signal("TERM");
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let abandoned: Vec<&str> = stderr.lines().filter(|line| line.contains("abandoned:")).collect();
    assert!(
        abandoned
            .iter()
            .any(|line| line.contains("`graceful_stop::block`") && line.contains("blocked")),
        "{stderr}"
    );
    assert!(
        abandoned
            .iter()
            .any(|line| line.contains("`graceful_stop::wait`") && line.contains("waiting")),
        "{stderr}"
    );
    assert!(stderr.contains("2 handler(s) abandoned"), "{stderr}");
    assert!(
        stderr.contains("3 event(s) read but not started were dropped"),
        "{stderr}"
    );
    let finished = |what: &str, name: &str| stderr.lines().any(|line| line.contains(what) && line.contains(name));
    assert!(
        !finished("done blocking", "\"blocked\"") && !finished("done waiting", "\"waiting\""),
        "{stderr}"
    );
    assert!(operator.stdout().contains("cleanup ran"), "{}", operator.stdout());
}

/// With one worker the loop itself runs the handler: the signal is still heard and the stop
/// still bounded.
#[test]
fn a_stuck_handler_with_one_worker_is_abandoned_too() {
    let mut operator = Process::start("graceful_stop", &["--workers", "1", "--shutdown-timeout", "500ms"], &[]);
    operator.write(&sleeper("blocked", json!({"blockSeconds": 600})));
    operator.wait_for("blocking for 600 s");
    operator.signal("INT");
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    assert!(
        stderr.contains("`graceful_stop::block`") && stderr.contains("abandoned:"),
        "{stderr}"
    );
    assert!(operator.stdout().contains("cleanup ran"));
}

fn second_signal_stops_at_once(signal: &str, name: &str, code: i32) {
    let mut operator = Process::start("graceful_stop", &["--workers", "2", "--shutdown-timeout", "10m"], &[]);
    operator.write(&sleeper("blocked", json!({"blockSeconds": 600})));
    operator.wait_for("blocking for 600 s");
    operator.signal(signal);
    operator.wait_for(&format!("{name} received; stopping gracefully"));
    operator.signal(signal);
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("{name} received again; stopping at once")),
        "{stderr}"
    );
    assert!(!operator.stdout().contains("cleanup ran"));
}

#[test]
fn a_second_sigterm_stops_at_once_with_143() {
    second_signal_stops_at_once("TERM", "SIGTERM", 143);
}

#[test]
fn a_second_sigint_stops_at_once_with_130() {
    second_signal_stops_at_once("INT", "SIGINT", 130);
}

/// The input ended while a handler is stuck: the operator waits for it, and a SIGTERM then is
/// logged and bounds the wait.
#[test]
fn sigterm_after_the_input_ended_is_heard() {
    let mut operator = Process::start("graceful_stop", &["--workers", "2", "--shutdown-timeout", "500ms"], &[]);
    operator.write(&sleeper("blocked", json!({"blockSeconds": 600})));
    operator.close_stdin();
    operator.wait_for("blocking for 600 s");
    operator.wait_for("the source ended");
    operator.signal("TERM");
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(stderr.contains("abandoned:"), "{stderr}");
}

#[test]
fn a_source_that_fails_exits_non_zero_after_cleanup() {
    let dir = std::env::temp_dir();
    let mut operator = Process::start("graceful_stop", &["--source", dir.to_str().unwrap()], &[]);
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped: the source failed"), "{stderr}");
    assert!(stderr.to_lowercase().contains("is a directory"), "{stderr}");
    assert!(operator.stdout().contains("cleanup ran"));
}

#[test]
fn a_missing_source_file_fails_before_startup() {
    let mut operator = Process::start("graceful_stop", &["--source", "/nonexistent/events.json"], &[]);
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot open `/nonexistent/events.json`"), "{stderr}");
}

#[test]
fn a_failing_startup_handler_stops_before_any_event() {
    let mut operator = Process::start(
        "graceful_stop",
        &["--workers", "2"],
        &[("GRACEFUL_STOP_FAIL_STARTUP", "1")],
    );
    operator.write(&sleeper("early", json!({"blockSeconds": 0})));
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("startup handler `graceful_stop::check_settings` at examples/graceful_stop.rs:"),
        "{stderr}"
    );
    assert!(stderr.contains("GRACEFUL_STOP_FAIL_STARTUP is set"), "{stderr}");
    assert!(!stderr.contains("blocking for"), "no event may be handled:\n{stderr}");
    assert!(!operator.stdout().contains("cleanup ran"));
}

#[test]
fn bad_shutdown_timeouts_are_refused_with_exit_code_2() {
    let mut operator = Process::start("graceful_stop", &["--shutdown-timeout", "soon"], &[]);
    let status = operator.wait_exit();
    assert_eq!(status.code(), Some(2));
    assert!(
        operator
            .stderr()
            .contains("`--shutdown-timeout soon` is not a duration"),
        "{}",
        operator.stderr()
    );
}
