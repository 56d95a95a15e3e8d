//! A source made from a stream of results fails the operator as the built-in ones do: the events
//! before the failure are handled, cleanup runs, and `run` returns the error.

mod common;

use common::*;
use memo_runtime::prelude::*;
use memo_runtime::source::EventSource;
use std::pin::Pin;
use std::task::{Context, Poll};

struct Items(std::vec::IntoIter<memo_runtime::Result<Event>>);

impl futures_core::Stream for Items {
    type Item = memo_runtime::Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next())
    }
}

#[handler(event = "KopfExample")]
fn seen(memo: &Memo, name: &str) {
    push(memo, format!("event {name}"));
}

#[tokio::test]
async fn a_failing_stream_stops_the_operator_with_its_error() {
    for workers in [1, 2] {
        let mut memo = Memo::new();
        let log = log_in(&mut memo);
        let items = vec![
            Ok(Event::added(example("a", "u-a"))),
            Ok(Event::added(example("b", "u-b"))),
            Err(Error::custom("the feed broke")),
            Ok(Event::added(example("never", "u-n"))),
        ];
        let source = EventSource::from_try_stream(Items(items.into_iter()));
        let outcome = Operator::new()
            .memo(memo)
            .workers(workers)
            .handle_signals(false)
            .source(source)
            .run()
            .await;
        let err = outcome.expect_err("the stream's failure fails the run");
        assert_eq!(err.to_string(), "the feed broke");
        let mut seen = entries(&log);
        seen.sort();
        assert_eq!(seen, ["event a", "event b"], "{workers} worker(s)");
    }
}
