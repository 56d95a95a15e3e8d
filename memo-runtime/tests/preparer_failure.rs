//! A failing preparer is reported with its name and location; the memory stays unprepared, its
//! handlers do not run on a half-prepared memory, and the next access tries again.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[prepare_memory]
async fn flaky(shared: &Shared) -> Result<(), String> {
    let attempt = ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    shared.set("half-written", attempt).await.map_err(|e| e.to_string())?;
    if attempt < 3 {
        return Err(format!("attempt {attempt} failed"));
    }
    shared.set("ready", true).await.map_err(|e| e.to_string())
}

#[handler(event = "Message")]
async fn needs_ready(shared: &Shared, memo: &Memo, name: &str) -> memo_runtime::Result<()> {
    let ready: Option<bool> = shared.get("ready").await?;
    push(memo, format!("{name} ready={ready:?}"));
    Ok(())
}

#[tokio::test]
async fn failed_preparation_is_retried_and_never_half_used() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let events = (1..=4)
        .map(|n| Event::added(object("Message", &format!("m{n}"), None, Some(&format!("u{n}")))))
        .collect();
    run_events(memo, 1, events).await.unwrap();
    assert_eq!(
        ATTEMPTS.load(Ordering::SeqCst),
        3,
        "retried on each access until it succeeded, then never again"
    );
    assert_eq!(entries(&log), ["m3 ready=Some(true)", "m4 ready=Some(true)"]);
}
