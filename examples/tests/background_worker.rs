//! The background worker example: startup starts the thread, cleanup takes it back and joins it.

#[allow(dead_code)]
#[path = "../background_worker.rs"]
mod example;

mod common;

#[test]
fn registers_exactly_its_three_handlers() {
    assert_eq!(memo_runtime::registered_handler_count(), 3);
}

#[tokio::test]
async fn starts_feeds_and_joins_the_thread() {
    // If any memo still shared the thread's handle at cleanup, `take` would fail and the cleanup
    // handler would log an error instead of joining.
    assert_eq!(common::errors_on_bundled_stream().await, 0);
}
