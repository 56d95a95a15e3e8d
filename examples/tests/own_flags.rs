//! The `own_flags` example as a process: its own `--greeting` flag and the runtime's flags,
//! flattened into one clap parser, all work, show in `--help` with their variables, and bad
//! values exit with 2; `--log-format json` writes one JSON object a line.

mod processes;

use processes::{Process, watch_event};
use serde_json::{Value, json};

fn kopf_example(name: &str, spec: Value) -> String {
    watch_event("ADDED", "KopfExample", name, spec)
}

#[test]
fn its_flag_and_the_runtimes_both_apply() {
    let mut operator = Process::start("own_flags", &["--greeting", "hi", "--workers", "1"], &[]);
    operator.write(&kopf_example("ex1", json!({})));
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("hi, ex1!"), "{stderr}");
    assert!(stderr.contains("reading watch events from standard input"), "{stderr}");
}

#[test]
fn its_flag_reads_its_variable() {
    let mut operator = Process::start("own_flags", &["--workers", "1"], &[("GREETING", "howdy")]);
    operator.write(&kopf_example("ex1", json!({})));
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("howdy, ex1!"), "{stderr}");
}

#[test]
fn help_lists_both_its_flags_and_the_runtimes_with_their_variables() {
    let mut operator = Process::start_plain("own_flags", &["--help"], &[]);
    let status = operator.wait_exit();
    let help = operator.stdout();
    assert_eq!(status.code(), Some(0), "{help}{}", operator.stderr());
    for needle in [
        "--greeting <TEXT>",
        "[env: GREETING=]",
        "--workers <N>",
        "--shutdown-timeout <DURATION>",
        "--source <FILE|->",
        "--namespace <NS>",
        "--redis <URL>",
        "[env: MEMO_REDIS_URL]",
        "--name <NAME>",
        "--shard <I/N>",
        "[env: MEMO_SHARD=]",
        "--log-format <FORMAT>",
        "[env: MEMO_LOG_FORMAT=]",
        "--liveness <HOST:PORT>",
        "[env: MEMO_LIVENESS=]",
        "--verbose",
        "--quiet",
        "Exit codes:",
    ] {
        assert!(help.contains(needle), "`{needle}` is missing from the help:\n{help}");
    }
}

#[test]
fn a_bad_runtime_value_exits_with_2() {
    let mut operator = Process::start("own_flags", &["--workers", "0"], &[]);
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--workers"), "{stderr}");
    assert!(stderr.contains("positive number"), "{stderr}");
}

#[test]
fn a_bad_log_format_exits_with_2() {
    let mut operator = Process::start("own_flags", &["--log-format", "xml"], &[]);
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("xml"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_a_line_with_the_events_fields() {
    let mut operator = Process::start(
        "own_flags",
        &["--greeting", "hi", "--workers", "1", "--log-format", "json"],
        &[],
    );
    operator.write(&kopf_example("ex1", json!({})));
    operator.write(&kopf_example("broken", json!({"fail": true})));
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}\n{stderr}")))
        .collect();
    let greeted = lines
        .iter()
        .find(|line| line["fields"]["message"] == "hi, ex1!")
        .unwrap_or_else(|| panic!("no greeting:\n{stderr}"));
    assert_eq!(greeted["level"], "INFO", "{greeted}");
    assert_eq!(greeted["target"], "memo", "{greeted}");
    assert_eq!(greeted["fields"]["kind"], "KopfExample", "{greeted}");
    assert_eq!(greeted["fields"]["namespace"], "default", "{greeted}");
    assert_eq!(greeted["fields"]["name"], "ex1", "{greeted}");
    // From the handler's span: the handler's id.
    assert_eq!(greeted["fields"]["handler"], "own_flags::greet", "{greeted}");
    let failed = lines
        .iter()
        .find(|line| line["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no failure logged:\n{stderr}"));
    assert_eq!(failed["fields"]["handler"], "own_flags::greet", "{failed}");
    assert_eq!(failed["fields"]["kind"], "KopfExample", "{failed}");
    assert_eq!(failed["fields"]["namespace"], "default", "{failed}");
    assert_eq!(failed["fields"]["name"], "broken", "{failed}");
    let message = failed["fields"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cannot say hi"), "{failed}");
}

#[test]
fn the_log_format_reads_its_variable() {
    let mut operator = Process::start("own_flags", &["--workers", "1"], &[("MEMO_LOG_FORMAT", "json")]);
    operator.write(&kopf_example("ex1", json!({})));
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}\n{stderr}"
        );
    }
}
