//! Any stream can be a source, and several sources merged are one: an operator watching two
//! kinds reads both, each resource's events in order.

mod common;

use common::*;
use memo_runtime::prelude::*;
use memo_runtime::source::{EventSource, channel};
use std::pin::Pin;
use std::task::{Context, Poll};

#[handler(event = "KopfExample")]
fn example_seen(memo: &Memo, name: &str, event: &Event) {
    push(memo, format!("{} {name}", event.r#type));
}

#[handler(event = "Other")]
fn other_seen(memo: &Memo, name: &str, event: &Event) {
    push(memo, format!("{} {name}", event.r#type));
}

/// A stream of prepared events that yields `Pending` once between them, as a real one would.
struct Scripted {
    events: std::vec::IntoIter<Event>,
    ready: bool,
}

impl futures_core::Stream for Scripted {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        Poll::Ready(self.events.next())
    }
}

#[tokio::test]
async fn a_stream_and_a_channel_merged_feed_one_operator() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let stream = Scripted {
        events: vec![
            Event::added(example("ex1", "u-1")),
            Event::modified(example("ex1", "u-1")),
            Event::deleted(example("ex1", "u-1")),
        ]
        .into_iter(),
        ready: false,
    };
    let (others, other_source) = channel(8);
    let source = EventSource::merge([EventSource::from_stream(stream), other_source]);
    let operator = Operator::new()
        .memo(memo)
        .workers(2)
        .handle_signals(false)
        .source(source);
    let running = tokio::spawn(operator.run());
    for r#type in [EventType::Added, EventType::Modified] {
        others
            .send(Event::new(r#type, object("Other", "o1", Some("d"), Some("u-2"))))
            .await
            .unwrap();
    }
    drop(others);
    running.await.unwrap().unwrap();
    let log = entries(&log);
    let of = |name: &str| -> Vec<&str> { log.iter().filter(|e| e.ends_with(name)).map(String::as_str).collect() };
    assert_eq!(of("ex1"), ["ADDED ex1", "MODIFIED ex1", "DELETED ex1"]);
    assert_eq!(of("o1"), ["ADDED o1", "MODIFIED o1"]);
}
