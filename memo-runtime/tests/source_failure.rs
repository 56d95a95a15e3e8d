//! A source that fails stops the operator with its error, after the cleanup handlers ran; only a
//! real end of input is a clean stop.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::io::Read;

#[handler(event = "KopfExample")]
fn seen(memo: &Memo, name: &str) {
    push(memo, format!("seen {name}"));
}

#[handler(cleanup)]
fn cleanup(memo: &Memo) {
    push(memo, "cleanup");
}

/// One event, then a read error.
struct Broken(std::io::Cursor<Vec<u8>>);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("connection reset by peer")),
            n => Ok(n),
        }
    }
}

fn one_event() -> Vec<u8> {
    let event = serde_json::json!({"type": "ADDED", "object": example("ex1", "u-1")});
    format!("{event}\n").into_bytes()
}

#[tokio::test]
async fn a_read_error_fails_the_run_after_cleanup() {
    for workers in [1, 2] {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let source = memo_runtime::source::json_reader(Broken(std::io::Cursor::new(one_event())));
        let result = Operator::new()
            .memo(memo)
            .workers(workers)
            .handle_signals(false)
            .source(source)
            .run()
            .await;
        let err = result.expect_err("a failed source is an error");
        assert!(matches!(err, Error::Io(_)), "{err:?}");
        assert!(err.to_string().contains("connection reset by peer"), "{err}");
        assert_eq!(err.exit_code(), 1);
        assert_eq!(entries(&log), ["seen ex1", "cleanup"], "with {workers} worker(s)");
    }
}

#[tokio::test]
async fn the_end_of_input_is_a_clean_stop() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let source = memo_runtime::source::json_reader(std::io::Cursor::new(one_event()));
    let operator = Operator::new().memo(memo).workers(2).handle_signals(false);
    operator.source(source).run().await.unwrap();
    assert_eq!(entries(&log), ["seen ex1", "cleanup"]);
}
