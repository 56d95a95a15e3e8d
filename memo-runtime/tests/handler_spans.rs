//! Every handler call runs in a `handler` span naming the handler and its resource, so that a
//! plain `tracing::info!` in a handler says what it is about; a resource's name from the input
//! cannot forge lines through it; a `logger` leaves the resource to the span (its own binary: it
//! installs the global subscriber, which worker threads log to).

mod common;

use common::{Render, object};
use memo_runtime::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
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

#[handler(event = "Hostile")]
fn hostile(logger: &Logger) {
    tracing::info!("hello from a hostile resource");
    logger.info("logged about a hostile resource");
}

#[handler(event = "Logged")]
fn logs(logger: &Logger) {
    logger.info("logged in the span");
    // Not in the span: a thread of its own, and another resource.
    let on_thread = logger.clone();
    std::thread::spawn(move || on_thread.info("logged from a thread"))
        .join()
        .unwrap();
    Logger::resource("Other", Some("elsewhere"), "o1").info("logged about another resource");
}

type Lines = Arc<Mutex<Vec<String>>>;

/// Every event, rendered `LEVEL message [in SPAN{fields}]...` (outermost span first).
fn lines() -> &'static Lines {
    &subscriber().0
}

/// What tracing-subscriber's default `fmt` writes (as on a terminal, without colors): the
/// formatter of users' own subscribers.
fn fmt_text() -> String {
    String::from_utf8(subscriber().1.lock().unwrap().clone()).unwrap()
}

type Buffer = Arc<Mutex<Vec<u8>>>;

fn subscriber() -> &'static (Lines, Buffer) {
    static CAPTURED: OnceLock<(Lines, Buffer)> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let lines = Lines::default();
        let buffer = Buffer::default();
        let writer = Arc::clone(&buffer);
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(move || Writer(Arc::clone(&writer)));
        let subscriber = tracing_subscriber::registry()
            .with(Capture(Arc::clone(&lines)))
            .with(fmt);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
        (lines, buffer)
    })
}

struct Writer(Buffer);

impl std::io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn run(events: Vec<Event>) {
    let (sender, source) = memo_runtime::source::channel(8);
    for event in events {
        sender.send(event).await.unwrap();
    }
    drop(sender);
    Operator::new()
        .workers(1)
        .handle_signals(false)
        .source(source)
        .run()
        .await
        .unwrap();
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

const FORGED: &str = "2026-01-01T00:00:00.000000Z ERROR memo: FORGED LINE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_name_or_namespace_cannot_forge_a_line_or_color_the_log() {
    lines();
    let name = format!("evil\n{FORGED}");
    run(vec![Event::added(object(
        "Hostile",
        &name,
        Some("\u{1b}[31mred"),
        Some("hostile"),
    ))])
    .await;
    let text = fmt_text();
    let ours: Vec<&str> = text.lines().filter(|line| line.contains("hostile")).collect();
    assert_eq!(ours.len(), 2, "{text}");
    for line in &ours {
        assert!(
            line.contains(r"handler{handler=handler_spans::hostile kind=Hostile namespace=\u{1b}[31mred name=evil\n2026-01-01T00:00:00.000000Z ERROR memo: FORGED LINE}"),
            "{line}"
        );
    }
    assert!(text.lines().all(|line| !line.starts_with(FORGED)), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    // What other subscribers see of the span is escaped the same way.
    let captured = logged("hostile resource");
    assert_eq!(captured.len(), 2, "{captured:#?}");
    assert!(
        captured
            .iter()
            .all(|line| !line.contains('\n') && !line.contains('\u{1b}')),
        "{captured:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logger_leaves_its_resource_to_the_span_it_is_in() {
    lines();
    run(vec![Event::added(object("Logged", "l1", Some("default"), Some("l1")))]).await;
    let text = fmt_text();
    let line = |message: &str| {
        let found: Vec<&str> = text.lines().filter(|line| line.contains(message)).collect();
        assert_eq!(found.len(), 1, "`{message}` in {text}");
        found[0].to_owned()
    };
    // Once, from the span.
    let in_span = line("logged in the span");
    assert_eq!(in_span.matches("name=").count(), 1, "{in_span}");
    assert_eq!(in_span.matches("kind=").count(), 1, "{in_span}");
    assert_eq!(in_span.matches("namespace=").count(), 1, "{in_span}");
    assert!(
        in_span.ends_with(
            "handler{handler=handler_spans::logs kind=Logged namespace=default name=l1}: memo: logged in the span"
        ),
        "{in_span}"
    );
    // Outside the span, the logger's own fields.
    let on_thread = line("logged from a thread");
    assert!(
        on_thread.ends_with(r#"memo: logged from a thread kind="Logged" namespace="default" name="l1""#),
        "{on_thread}"
    );
    assert!(!on_thread.contains("handler{"), "{on_thread}");
    let other = line("logged about another resource");
    assert!(
        other.ends_with(
            r#"handler{handler=handler_spans::logs kind=Logged namespace=default name=l1}: memo: logged about another resource kind="Other" namespace="elsewhere" name="o1""#
        ),
        "{other}"
    );
}
