//! The operator over a `kubectl --watch` stream, with malformed input in the middle.

mod common;

use common::*;
use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn seen(memo: &Memo, name: &str, event: &Event) {
    push(memo, format!("{} {name}", event.r#type));
}

const STREAM: &str = r#"{
  "type": "ADDED",
  "object": {
    "apiVersion": "kopf.dev/v1",
    "kind": "KopfExample",
    "metadata": {"name": "kopf-example-1", "namespace": "default", "uid": "u-1"}
  }
}
{"type": "MODIFIED", "object": {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "kopf-example-1", "namespace": "default", "uid": "u-1"
{"type": "BOOKMARK", "object": {"kind": "KopfExample", "metadata": {"resourceVersion": "12"}}}
this line is not json at all
{"type": "ADDED", "object": {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "kopf-example-2", "uid": "u-2"}}}
{"type": "DELETED", "object": {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "kopf-example-1", "namespace": "default", "uid": "u-1"}}}
"#;

#[tokio::test]
async fn malformed_documents_are_skipped_and_the_stream_goes_on() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let source = memo_runtime::source::json_stream(STREAM.as_bytes());
    Operator::new()
        .memo(memo)
        .workers(1)
        .handle_signals(false)
        .source(source)
        .run()
        .await
        .unwrap();
    assert_eq!(
        entries(&log),
        ["ADDED kopf-example-1", "ADDED kopf-example-2", "DELETED kopf-example-1"]
    );
}

#[tokio::test]
async fn the_bundled_example_stream_is_valid() {
    let data = include_str!("../../examples/data/kopfexamples.json");
    let mut source = memo_runtime::source::json_stream(data.as_bytes());
    let mut count = 0;
    while let Some(event) = source.next().await {
        assert_eq!(event.kind(), Some("KopfExample"));
        count += 1;
    }
    assert!(count >= 5, "the example stream has {count} events");
}
