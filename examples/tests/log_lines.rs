//! The counter example's log lines as `run()` writes them off a terminal: a resource's name or
//! namespace from the input cannot forge a line or color the log, in text or JSON, and a
//! `logger` line shows the resource once.

mod processes;

use processes::Process;
use serde_json::{Value, json};

const FORGED: &str = "2026-01-01T00:00:00.000000Z ERROR memo: FORGED LINE";

/// One `KopfExample` event, as `kubectl --watch -o json` prints it on one line.
fn event(name: &str, namespace: &str) -> String {
    let event = json!({
        "type": "ADDED",
        "object": {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfExample",
            "metadata": {"name": name, "namespace": namespace, "uid": "uid-1"},
            "spec": {},
        }
    });
    format!("{event}\n")
}

/// The counter's standard error after one event of `name` in `namespace`.
fn counter_logs(name: &str, namespace: &str, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--workers", "1"]);
    let mut operator = Process::start("counter", &args, &[]);
    operator.write(&event(name, namespace));
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    stderr
}

#[test]
fn a_hostile_name_or_namespace_forges_no_line_in_text_logs() {
    let name = format!("evil\n{FORGED}");
    let stderr = counter_logs(&name, "\u{1b}[31mred", &[]);
    let pinged: Vec<&str> = stderr.lines().filter(|line| line.contains("pinged")).collect();
    assert_eq!(pinged.len(), 1, "{stderr}");
    assert!(
        pinged[0].ends_with(
            r"INFO handler{handler=counter::pinged kind=KopfExample namespace=\u{1b}[31mred name=evil\n2026-01-01T00:00:00.000000Z ERROR memo: FORGED LINE}: memo: pinged: 1 event(s) so far"
        ),
        "{stderr}"
    );
    assert!(stderr.lines().all(|line| !line.starts_with(FORGED)), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn a_hostile_name_or_namespace_is_carried_as_it_is_in_json_logs() {
    let name = format!("evil\n{FORGED}");
    let stderr = counter_logs(&name, "\u{1b}[31mred", &["--log-format", "json"]);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}\n{stderr}")))
        .collect();
    let pinged = lines
        .iter()
        .find(|line| line["fields"]["message"] == "pinged: 1 event(s) so far")
        .unwrap_or_else(|| panic!("no pinged line:\n{stderr}"));
    assert_eq!(pinged["fields"]["name"], name.as_str(), "{pinged}");
    assert_eq!(pinged["fields"]["namespace"], "\u{1b}[31mred", "{pinged}");
    assert_eq!(pinged["fields"]["kind"], "KopfExample", "{pinged}");
}

#[test]
fn a_logger_line_shows_the_resource_once() {
    let stderr = counter_logs("ex1", "default", &[]);
    let pinged: Vec<&str> = stderr.lines().filter(|line| line.contains("pinged")).collect();
    assert_eq!(pinged.len(), 1, "{stderr}");
    for field in ["kind=", "namespace=", "name="] {
        assert_eq!(pinged[0].matches(field).count(), 1, "`{field}` in {stderr}");
    }
    assert!(
        pinged[0].ends_with(
            "INFO handler{handler=counter::pinged kind=KopfExample namespace=default name=ex1}: memo: pinged: 1 event(s) so far"
        ),
        "{stderr}"
    );

    let stderr = counter_logs("ex1", "default", &["--log-format", "json"]);
    let pinged: Vec<&str> = stderr.lines().filter(|line| line.contains("pinged")).collect();
    assert_eq!(pinged.len(), 1, "{stderr}");
    for field in ["\"kind\":", "\"namespace\":", "\"name\":"] {
        assert_eq!(pinged[0].matches(field).count(), 1, "`{field}` in {stderr}");
    }
    let line: Value = serde_json::from_str(pinged[0]).unwrap();
    assert_eq!(
        line["fields"],
        json!({
            "message": "pinged: 1 event(s) so far",
            "handler": "counter::pinged",
            "kind": "KopfExample",
            "namespace": "default",
            "name": "ex1",
        }),
        "{stderr}"
    );
}
