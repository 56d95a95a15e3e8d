//! The background worker example: startup starts the thread, cleanup takes it back and joins it.

#[allow(dead_code)]
#[path = "../background_worker.rs"]
mod example;

mod common;

use memo_runtime::prelude::*;
use std::sync::atomic::Ordering;

#[test]
fn registers_exactly_its_three_handlers() {
    assert_eq!(memo_runtime::registered_handler_count(), 3);
}

#[tokio::test]
async fn starts_feeds_and_joins_the_thread() {
    // If any memo still shared the thread's handle at cleanup, `take` would fail and the cleanup
    // handler would log an error instead of joining.
    let (_guard, errors) = common::count_errors();
    let file = tokio::fs::File::open(common::data_file()).await.unwrap();
    let source = memo_runtime::source::json_stream(file);
    Operator::new()
        .workers(2)
        .handle_signals(false)
        .source(source)
        .run()
        .await
        .unwrap();
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}
