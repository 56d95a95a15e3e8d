//! The counter example's handlers, registered and run on the bundled watch stream.

#[allow(dead_code)]
#[path = "../counter.rs"]
mod example;

mod common;

use std::sync::atomic::Ordering;

#[test]
fn registers_exactly_its_two_handlers() {
    assert_eq!(memo_runtime::registered_handler_count(), 2);
}

#[tokio::test]
async fn runs_on_the_bundled_stream_without_errors() {
    assert_eq!(common::errors_on_bundled_stream().await, 0);
}

#[test]
fn the_error_counter_sees_errors() {
    let (_guard, errors) = common::count_errors();
    tracing::error!("a handler failed");
    tracing::warn!("only a warning");
    assert_eq!(errors.load(Ordering::SeqCst), 1);
}
