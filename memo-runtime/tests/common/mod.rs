//! Helpers shared by the integration tests: building objects and a log shared through the memo.
#![allow(dead_code)]

use memo_runtime::prelude::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A `KopfExample` object.
pub fn example(name: &str, uid: &str) -> Value {
    object("KopfExample", name, Some("default"), Some(uid))
}

pub fn object(kind: &str, name: &str, namespace: Option<&str>, uid: Option<&str>) -> Value {
    let mut metadata = json!({ "name": name });
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    if let Some(uid) = uid {
        metadata["uid"] = json!(uid);
    }
    json!({ "apiVersion": "kopf.dev/v1", "kind": kind, "metadata": metadata, "spec": {} })
}

/// A log that every memo cloned from the operator memo shares (kopf: shared mutable objects).
pub type Log = Arc<Mutex<Vec<String>>>;

pub fn log_in(memo: &mut Memo) -> Log {
    let log = Log::default();
    memo.insert("log", Arc::clone(&log));
    log
}

pub fn push(memo: &Memo, entry: impl Into<String>) {
    memo.get::<Log>("log")
        .expect("the test put a log in the operator memo")
        .lock()
        .unwrap()
        .push(entry.into());
}

pub fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Starts an operator with `memo` on a channel source; returns the sender and the running task.
pub fn spawn_operator(
    memo: Memo,
    workers: usize,
) -> (
    memo_runtime::source::EventSender,
    tokio::task::JoinHandle<memo_runtime::Result<()>>,
) {
    let (sender, source) = memo_runtime::source::channel(64);
    let operator = Operator::new()
        .memo(memo)
        .workers(workers)
        .handle_signals(false)
        .source(source);
    (sender, tokio::spawn(operator.run()))
}

/// Runs an operator with `memo` over `events` and waits until it has finished.
pub async fn run_events(memo: Memo, workers: usize, events: Vec<Event>) -> memo_runtime::Result<()> {
    let (sender, running) = spawn_operator(memo, workers);
    for event in events {
        sender.send(event).await?;
    }
    drop(sender);
    running.await.expect("the operator task panicked")
}

/// Every `tracing` event on this thread while the guard lives, rendered as
/// `LEVEL message field=value ...` (use a current-thread runtime).
pub fn capture_logs() -> (tracing::subscriber::DefaultGuard, Log) {
    use tracing_subscriber::layer::SubscriberExt;
    let lines = Log::default();
    let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&lines)));
    let guard = tracing::subscriber::set_default(subscriber);
    // Callsites first hit on other threads before this subscriber existed cached "not
    // interested"; recompute now that it exists.
    tracing::callsite::rebuild_interest_cache();
    (guard, lines)
}

struct Capture(Log);

/// Renders the fields it visits as ` message field=value ...` after what it holds.
pub struct Render(pub String);

impl tracing::field::Visit for Render {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut line = Render(event.metadata().level().to_string());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
}
