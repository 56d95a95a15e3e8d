//! What a failing handler and an invalid event log: the handler's id and the resource. (Its own
//! test binary: capturing `tracing` output is reliable only without other tests running at once.)

mod common;

use common::*;
use memo_runtime::prelude::*;

#[path = "common/failing.rs"]
mod failing;

#[tokio::test(flavor = "current_thread")]
async fn failures_are_logged_with_the_handler_and_the_resource() {
    let (_guard, logs) = capture_logs();
    let mut memo = Memo::new();
    let _log = log_in(&mut memo);
    let events = vec![
        Event::added(example("bad", "u-1")),
        Event::added(example("boom", "u-2")),
        Event::added(serde_json::json!({"metadata": {"name": "no-kind"}})),
        Event::added(serde_json::json!({"kind": "KopfExample", "metadata": {}})),
        // Identity fields of the wrong type are refused, not read as absent.
        Event::added(serde_json::json!({"kind": "KopfExample", "metadata": {"name": "u", "uid": {"a": 1}}})),
        Event::added(serde_json::json!({"kind": "KopfExample", "metadata": {"name": "ns", "namespace": ["x"]}})),
        Event::added(serde_json::json!({"kind": "KopfExample", "metadata": {"name": ""}})),
        Event::added(serde_json::json!({"kind": "KopfExample", "metadata": {"name": 5}})),
    ];
    run_events(memo, 2, events).await.unwrap();
    let errors: Vec<String> = entries(&logs)
        .into_iter()
        .filter(|line| line.starts_with("ERROR"))
        .collect();
    let has = |parts: &[&str]| errors.iter().any(|line| parts.iter().all(|part| line.contains(part)));
    assert!(
        has(&[
            "handler `failure_logs::failing::fails` failed: bad is bad",
            "kind=\"KopfExample\"",
            "name=\"bad\"",
            "namespace=\"default\""
        ]),
        "{errors:#?}"
    );
    assert!(
        has(&[
            "handler `failure_logs::failing::panics` failed: panicked: handler exploded on boom",
            "name=\"boom\""
        ]),
        "{errors:#?}"
    );
    assert!(
        has(&["event rejected: the object has no `kind`", "name=\"no-kind\""]),
        "{errors:#?}"
    );
    assert!(
        has(&[
            "event rejected: the object has no `metadata.name`",
            "kind=\"KopfExample\""
        ]),
        "{errors:#?}"
    );
    for (message, name) in [
        (
            "event rejected: the object's `metadata.uid` is an object, not a string",
            "name=\"u\"",
        ),
        (
            "event rejected: the object's `metadata.namespace` is an array, not a string",
            "name=\"ns\"",
        ),
        (
            "event rejected: the object's `metadata.name` is empty",
            "kind=\"KopfExample\"",
        ),
        (
            "event rejected: the object's `metadata.name` is a number, not a string",
            "kind=\"KopfExample\"",
        ),
    ] {
        assert!(has(&[message, name]), "no `{message}` in {errors:#?}");
    }
    assert_eq!(errors.len(), 8, "{errors:#?}");
}
