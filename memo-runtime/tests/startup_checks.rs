//! What the macros cannot see is checked when `Operator::run` starts: duplicate explicit ids in
//! different modules (or crates), and preparers of a component that no handler has. Every
//! problem is reported at once, with its code and locations, and nothing runs.

use memo_runtime::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

static RAN: AtomicBool = AtomicBool::new(false);

mod one {
    #[memo_runtime::handler(event = "KopfExample", id = "greeter")]
    fn greet() {
        super::RAN.store(true, super::Ordering::SeqCst);
    }
}

mod two {
    #[memo_runtime::handler(create = "KopfExample", id = "greeter")]
    fn greet_again() {}
}

#[prepare_memory(component = "nobody-uses-this")]
async fn orphan(shared: &Shared) {
    let _ = shared;
}

#[handler(startup)]
fn would_start() {
    RAN.store(true, Ordering::SeqCst);
}

#[tokio::test]
async fn every_problem_is_reported_before_anything_runs() {
    let (_events, source) = memo_runtime::source::channel(1);
    let err = Operator::new()
        .handle_signals(false)
        .source(source)
        .run()
        .await
        .unwrap_err();
    let Error::Startup(problems) = &err else {
        panic!("expected a startup error, got {err}")
    };
    let codes: Vec<&str> = problems.iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["M0004", "M0002"], "{err}");
    let message = err.to_string();
    assert!(
        message.contains("error[M0002]: two handlers have the id `greeter`"),
        "{message}"
    );
    assert!(
        message.contains("memo-runtime/tests/startup_checks.rs:12:"),
        "{message}"
    );
    assert!(
        message.contains("memo-runtime/tests/startup_checks.rs:19:"),
        "{message}"
    );
    assert!(
        message.contains("error[M0004]: preparer `startup_checks::orphan`"),
        "{message}"
    );
    assert!(message.contains("component `nobody-uses-this`"), "{message}");
    assert!(!RAN.load(Ordering::SeqCst));
}
