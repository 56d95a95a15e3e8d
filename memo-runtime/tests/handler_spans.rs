//! Every handler call runs in a `handler` span naming the handler and its resource, so that a
//! plain `tracing::info!` in a handler says what it is about (its own binary: it installs the
//! global subscriber, which worker threads log to).

mod common;

use common::{object, Render};
use memo_runtime::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[handler(event = "Widget")]
fn plain() {
    tracing::info!("hello from a sync handler");
}

#[handler(create = "Widget")]
async fn awaiting() {
    tokio::task::yield_now().await;
    tracing::info!("hello from an async handler, after an await");
}

#[handler(event = "Cluster")]
fn cluster_scoped() {
    tracing::info!("hello from a cluster-scoped resource");
}

#[handler(startup)]
fn started() {
    tracing::info!("hello from startup");
}

type Lines = Arc<Mutex<Vec<String>>>;

/// Every event, rendered `LEVEL message [in SPAN{fields}]...` (outermost span first).
fn lines() -> &'static Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&lines)));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
        lines
    })
}

struct Capture(Lines);

struct SpanFields(String);

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = Render(String::new());
        attributes.record(&mut fields);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, context: Context<'_, S>) {
        let mut line = Render(event.metadata().level().to_string());
        event.record(&mut line);
        if let Some(scope) = context.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let fields = extensions.get::<SpanFields>().map_or("", |fields| &fields.0);
                line.0
                    .push_str(&format!(" in {}{{{}}}", span.name(), fields.trim_start()));
            }
        }
        self.0.lock().unwrap().push(line.0);
    }
}

fn logged(text: &str) -> Vec<String> {
    lines()
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(text))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tracing_event_in_a_handler_carries_its_resource() {
    lines();
    for workers in [1, 2] {
        let name = format!("w{workers}");
        let events = vec![
            Event::added(object("Widget", &name, Some("default"), Some(&format!("u{workers}")))),
            Event::added(object(
                "Cluster",
                &format!("c{workers}"),
                None,
                Some(&format!("c{workers}")),
            )),
        ];
        let (sender, source) = memo_runtime::source::channel(8);
        for event in events {
            sender.send(event).await.unwrap();
        }
        drop(sender);
        Operator::new()
            .workers(workers)
            .handle_signals(false)
            .source(source)
            .run()
            .await
            .unwrap();
        let resource = format!("kind=Widget namespace=default name={name}");
        for (message, handler) in [
            ("hello from a sync handler", "handler_spans::plain"),
            ("hello from an async handler, after an await", "handler_spans::awaiting"),
        ] {
            let expected = format!("INFO {message} in handler{{handler={handler} {resource}}}");
            assert!(
                logged(message).contains(&expected),
                "workers {workers}: no `{expected}` in {:#?}",
                logged(message)
            );
        }
        // No namespace: no namespace field.
        let expected = format!(
            "INFO hello from a cluster-scoped resource in handler{{handler=handler_spans::cluster_scoped kind=Cluster name=c{workers}}}"
        );
        assert!(
            logged("cluster-scoped").contains(&expected),
            "no `{expected}` in {:#?}",
            logged("cluster-scoped")
        );
    }
    // Startup handlers have no resource: the span names the handler alone.
    assert!(
        logged("hello from startup")
            .iter()
            .all(|line| line == "INFO hello from startup in handler{handler=handler_spans::started}"),
        "{:#?}",
        logged("hello from startup")
    );
    assert!(!logged("hello from startup").is_empty());
    // The runtime's own lines outside handlers are in no span.
    assert!(
        logged("stopped: the source ended")
            .iter()
            .all(|line| !line.contains(" in handler")),
        "{:#?}",
        logged("stopped")
    );
}
