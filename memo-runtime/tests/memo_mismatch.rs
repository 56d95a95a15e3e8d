//! A handler whose memo type differs from the operator's stops `Operator::run` before anything
//! is handled, naming the handler, its location and both types.

use memo_runtime::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

static RAN: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Default)]
struct Custom;

#[handler(event = "KopfExample")]
fn wants_the_default_memo(memo: &mut Memo) {
    let _ = memo;
    RAN.store(true, Ordering::SeqCst);
}

#[handler(startup)]
fn startup_would_run_first(_memo: &Custom) {
    RAN.store(true, Ordering::SeqCst);
}

#[tokio::test]
async fn mismatched_memo_type_fails_before_handling_anything() {
    let (events, source) = memo_runtime::source::channel(8);
    let running = tokio::spawn(Operator::new().memo(Custom).handle_signals(false).source(source).run());
    let _ = events
        .send(Event::added(
            serde_json::json!({"kind": "KopfExample", "metadata": {"name": "x"}}),
        ))
        .await;
    let err = running.await.unwrap().unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::Startup(problems) if problems.len() == 1 && problems[0].code() == "M0001"),
        "{message}"
    );
    assert!(message.contains("memo_mismatch::wants_the_default_memo"), "{message}");
    assert!(message.contains("memo-runtime/tests/memo_mismatch.rs:13:"), "{message}");
    assert!(message.contains("memo_runtime::api::memo::Memo"), "{message}");
    assert!(message.contains("memo_mismatch::Custom"), "{message}");
    assert!(!RAN.load(Ordering::SeqCst), "nothing runs when validation fails");
}
