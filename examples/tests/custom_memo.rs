//! The custom memo example: its handlers ask for `&Templates`, so they run with that memo type.

#[allow(dead_code)]
#[path = "../custom_memo.rs"]
mod example;

#[test]
fn registers_exactly_its_two_handlers() {
    assert_eq!(memo_runtime::registered_handler_count(), 2);
}

#[tokio::test]
async fn the_default_memo_type_is_rejected_with_both_types_named() {
    let (_events, source) = memo_runtime::source::channel(1);
    let err = memo_runtime::Operator::new()
        .handle_signals(false)
        .source(source)
        .run()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("custom_memo::example::Templates"), "{message}");
    assert!(message.contains("memo_runtime::api::memo::Memo"), "{message}");
}
