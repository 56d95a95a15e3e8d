//! Counts `ERROR` events: a handler that fails (or is skipped) is logged at that level, so a run
//! with zero errors means every handler of the example succeeded.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

struct CountErrors(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for CountErrors {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts errors logged on this thread while the guard lives (use a current-thread runtime).
pub fn count_errors() -> (tracing::subscriber::DefaultGuard, Arc<AtomicUsize>) {
    let errors = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountErrors(Arc::clone(&errors)));
    let guard = tracing::subscriber::set_default(subscriber);
    // Callsites first hit on other threads before this subscriber existed cached "not
    // interested"; recompute now that it exists.
    tracing::callsite::rebuild_interest_cache();
    (guard, errors)
}

pub fn data_file() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/data/kopfexamples.json")
}

/// The bundled watch stream as a source.
pub async fn bundled_stream() -> memo_runtime::source::EventSource {
    let file = tokio::fs::File::open(data_file())
        .await
        .expect("the bundled watch stream");
    memo_runtime::source::json_stream(file)
}

/// Runs an operator with 2 workers on the bundled stream; returns how many errors it logged.
pub async fn errors_on_bundled_stream() -> usize {
    let (_guard, errors) = count_errors();
    let operator = memo_runtime::Operator::new().workers(2).handle_signals(false);
    operator
        .source(bundled_stream().await)
        .run()
        .await
        .expect("the operator runs");
    errors.load(Ordering::SeqCst)
}
