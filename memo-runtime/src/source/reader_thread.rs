//! Watch documents read and framed from a blocking reader on a thread of its own, which nobody
//! ever waits for: dropping the source abandons the thread, blocked in a read or not.
//!
//! The thread frames the documents. Until the operator says its lanes parse them
//! ([`ReaderThread::parse_on_consumer`], [`super::unparsed`]), it parses them too. With one lane,
//! the lane parses each document before handling it; with several, the router reads only each
//! document's uid and hands the lane its bytes.

use super::Taken;
use super::document::Item;
use super::framer::{LineFramer, READ_CHUNK};
use super::unparsed::{Framed, Unparsed};
use crate::api::event::Event;
use crate::api::shard::Sharding;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Batches read ahead of the consumer: enough to keep it busy, little enough to bound memory
/// when it is slow.
const AHEAD: usize = 4;

pub(crate) struct ReaderThread {
    /// Which resources this replica handles, for the thread's framer.
    shard: Arc<OnceLock<Sharding>>,
    /// Whether the consumer parses the documents (the thread reads it before each read).
    consumer_parses: Arc<AtomicBool>,
    batches: mpsc::Receiver<io::Result<Batch>>,
    current: Batch,
    failure: Option<io::Error>,
}

/// What one read gave: events parsed on the thread, or documents for the consumer to parse.
enum Batch {
    Events(std::vec::IntoIter<Event>),
    Unparsed(Box<Unparsed>),
}

impl Batch {
    /// Whether an event or a document is next; what was skipped before it is logged.
    fn has_next(&mut self) -> bool {
        match self {
            Batch::Events(events) => events.len() > 0,
            Batch::Unparsed(unparsed) => unparsed.document_next(),
        }
    }

    /// The next event, or the next document as it was framed: after [`Batch::has_next`], some.
    fn next_taken(&mut self) -> Option<Taken<'_>> {
        match self {
            Batch::Events(events) => events.next().map(Taken::Event),
            Batch::Unparsed(unparsed) => match unparsed.next_framed()? {
                Framed::Document { text, line, column } => Some(Taken::Document { text, line, column }),
                Framed::Skipped(skipped) => {
                    skipped.log();
                    None
                }
            },
        }
    }

    /// The next event of the batch; what was skipped on the way is logged.
    fn next(&mut self) -> Option<Event> {
        match self {
            Batch::Events(events) => events.next(),
            Batch::Unparsed(unparsed) => loop {
                match unparsed.next_item()? {
                    Item::Event(event) => return Some(event),
                    Item::Skipped(skipped) => skipped.log(),
                }
            },
        }
    }
}

impl ReaderThread {
    /// Reads what `open` gives; `open` runs on the thread too, since opening a FIFO blocks until
    /// a writer comes.
    pub(crate) fn spawn<R, O>(open: O) -> Self
    where
        R: Read,
        O: FnOnce() -> io::Result<R> + Send + 'static,
    {
        let (sender, batches) = mpsc::channel(AHEAD);
        let failures = sender.clone();
        let framer = LineFramer::new();
        let shard = framer.shard();
        let consumer_parses = Arc::new(AtomicBool::new(false));
        let defer = Arc::clone(&consumer_parses);
        let read = move || {
            // A send fails once the consumer is gone (the operator stopped): then stop reading.
            let outcome = open().and_then(|reader| {
                read_blocking(framer, reader, &defer, |batch| sender.blocking_send(Ok(batch)).is_ok())
            });
            if let Err(err) = outcome {
                let _ = failures.blocking_send(Err(err));
            }
        };
        let mut this = ReaderThread {
            shard,
            consumer_parses,
            batches,
            current: Batch::Events(Vec::new().into_iter()),
            failure: None,
        };
        if let Err(err) = std::thread::Builder::new().name("memo-source".into()).spawn(read) {
            this.failure = Some(io::Error::new(
                err.kind(),
                format!("cannot start the reading thread: {err}"),
            ));
            this.batches.close();
        }
        this
    }

    /// Says which resources this replica handles: the thread drops the others' documents.
    pub(crate) fn shard(&self, sharding: &Sharding) {
        let _ = self.shard.set(sharding.clone());
    }

    /// From the next read on, the documents are parsed by the consumer, on its thread: the one
    /// lane's, which then frees what it parsed where it was allocated.
    pub(crate) fn parse_on_consumer(&self) {
        self.consumer_parses.store(true, Ordering::Relaxed);
    }

    /// The next event if one was read already.
    pub(crate) fn try_next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.current.next() {
                return Some(event);
            }
            match self.batches.try_recv() {
                Ok(batch) => self.take(batch),
                Err(_) => return None,
            }
        }
    }

    /// The next event or framed document if one was read already (documents once the consumer
    /// parses them).
    pub(crate) fn try_next_taken(&mut self) -> Option<Taken<'_>> {
        while !self.current.has_next() {
            match self.batches.try_recv() {
                Ok(batch) => self.take(batch),
                Err(_) => return None,
            }
        }
        self.current.next_taken()
    }

    /// The next event or framed document; `Ok(None)` at the end of input, or the read error.
    pub(crate) async fn next_taken(&mut self) -> io::Result<Option<Taken<'_>>> {
        while !self.current.has_next() {
            match self.batches.recv().await {
                Some(batch) => self.take(batch),
                None => return self.failure.take().map_or(Ok(None), Err),
            }
        }
        Ok(self.current.next_taken())
    }

    /// The next event; `None` at the end of input or after a failure ([`ReaderThread::take_failure`]).
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.current.next() {
                return Some(event);
            }
            let batch = self.batches.recv().await?;
            self.take(batch);
        }
    }

    fn take(&mut self, batch: io::Result<Batch>) {
        match batch {
            Ok(batch) => self.current = batch,
            Err(err) => {
                self.failure = Some(err);
                self.batches.close();
            }
        }
    }

    /// Why the input ended early: the read error, once.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failure.take()
    }
}

/// Reads and frames watch events from a blocking reader, on the calling thread, handing over each
/// read's events at once: `emit` gets them in batches (one batch per read that produced any),
/// parsed unless `consumer_parses`, and returns `false` to stop. Ends at the end of input (`Ok`)
/// or with the read error.
fn read_blocking(
    mut framer: LineFramer,
    mut reader: impl Read,
    consumer_parses: &AtomicBool,
    mut emit: impl FnMut(Batch) -> bool,
) -> io::Result<()> {
    let mut failure = None;
    loop {
        framer.defer(consumer_parses.load(Ordering::Relaxed));
        let mut batch = Vec::new();
        while let Some(item) = framer.next_item() {
            match item {
                Item::Event(event) => batch.push(event),
                Item::Skipped(skipped) => {
                    if let Some(skipped) = framer.keep_skipped(skipped) {
                        skipped.log();
                    }
                }
            }
        }
        if !batch.is_empty() && !emit(Batch::Events(batch.into_iter())) {
            return Ok(());
        }
        if let Some(unparsed) = framer.take_unparsed()
            && !emit(Batch::Unparsed(unparsed))
        {
            return Ok(());
        }
        if framer.is_finished() {
            return failure.map_or(Ok(()), Err);
        }
        let buf = framer.buffer();
        let filled = buf.len();
        buf.resize(filled + READ_CHUNK, 0);
        let read = loop {
            match reader.read(&mut buf[filled..]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(n) => {
                buf.truncate(filled + n);
                if n == 0 {
                    framer.finish();
                }
            }
            Err(err) => {
                buf.truncate(filled);
                tracing::error!(line = framer.line(), "watch stream: read failed, stopping: {err}");
                failure = Some(err);
                // What was read is all there will be: a last document complete but for its
                // newline is still delivered, an unfinished one reported.
                framer.finish();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some bytes, then a read error.
    struct FailAfter(Vec<u8>);

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    fn events(count: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for index in 0..count {
            let event = serde_json::json!({"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": format!("p{index}")}}});
            bytes.extend_from_slice(format!("{event}\n").as_bytes());
        }
        bytes
    }

    #[tokio::test]
    async fn every_event_in_order_then_the_end() {
        let input = events(5_000);
        let mut reader = ReaderThread::spawn(move || Ok(io::Cursor::new(input)));
        for index in 0..5_000 {
            let event = reader.next().await.expect("every event arrives");
            assert_eq!(event.name(), Some(format!("p{index}").as_str()));
            // What was parsed already is taken without waiting.
            if let Some(next) = reader.try_next() {
                assert_eq!(next.name(), Some(format!("p{}", index + 1).as_str()));
                break;
            }
        }
        while reader.next().await.is_some() {}
        assert!(reader.take_failure().is_none(), "a real end is no failure");
    }

    #[tokio::test]
    async fn events_then_the_error() {
        let input = events(2);
        let mut reader = ReaderThread::spawn(move || Ok(FailAfter(input)));
        assert_eq!(reader.next().await.unwrap().name(), Some("p0"));
        assert_eq!(reader.next().await.unwrap().name(), Some("p1"));
        assert!(reader.next().await.is_none());
        assert_eq!(reader.take_failure().unwrap().to_string(), "disk on fire");
        assert!(reader.take_failure().is_none(), "handed over once");
    }

    #[tokio::test]
    async fn a_last_line_whole_but_for_its_newline_is_delivered_before_the_error() {
        let mut input = events(2);
        input.pop();
        let mut reader = ReaderThread::spawn(move || Ok(FailAfter(input)));
        assert_eq!(reader.next().await.unwrap().name(), Some("p0"));
        assert_eq!(reader.next().await.unwrap().name(), Some("p1"));
        assert!(reader.next().await.is_none());
        assert_eq!(reader.take_failure().unwrap().to_string(), "disk on fire");
    }

    fn describe(item: Item) -> String {
        match item {
            Item::Event(event) => format!("event {}", event.name().unwrap_or_default()),
            Item::Skipped(skipped) => format!("skipped {}:{} {}", skipped.line, skipped.column, skipped.reason),
        }
    }

    /// Everything `read_blocking` hands over for `input`, as items, and whether each batch came
    /// unparsed.
    fn items_of(input: &[u8], consumer_parses: bool) -> (Vec<String>, Vec<bool>) {
        let (mut items, mut unparsed) = (Vec::new(), Vec::new());
        let flag = AtomicBool::new(consumer_parses);
        read_blocking(LineFramer::new(), io::Cursor::new(input.to_vec()), &flag, |batch| {
            match batch {
                Batch::Events(events) => {
                    unparsed.push(false);
                    items.extend(events.map(|event| describe(Item::Event(event))));
                }
                Batch::Unparsed(mut documents) => {
                    unparsed.push(true);
                    while let Some(item) = documents.next_item() {
                        items.push(describe(item));
                    }
                }
            }
            true
        })
        .expect("a cursor reads");
        (items, unparsed)
    }

    #[test]
    fn documents_left_to_the_consumer_give_the_same_events_and_skips_in_the_same_order() {
        let mut input = events(3);
        input.extend_from_slice(b"not json at all\n{\"type\": \"ADDED\"}\n");
        input.extend_from_slice(&events(2));
        // What the framer makes of the input, parsing as it goes.
        let mut framed = Vec::new();
        super::super::framer::split_all(&input, READ_CHUNK, |item| framed.push(describe(item)));
        assert_eq!(framed.len(), 7, "{framed:?}");
        assert!(
            framed[3].starts_with("skipped 4:") && framed[4].starts_with("skipped 5:"),
            "{framed:?}"
        );
        let (here, batches_here) = items_of(&input, false);
        let (there, batches_there) = items_of(&input, true);
        assert!(batches_here.iter().all(|unparsed| !unparsed), "parsed on the thread");
        assert!(
            !batches_there.is_empty() && batches_there.iter().all(|&unparsed| unparsed),
            "left to the consumer"
        );
        // Parsed on the thread, the skips were logged there: only the events were handed over.
        let events: Vec<_> = framed
            .iter()
            .filter(|item| item.starts_with("event"))
            .cloned()
            .collect();
        assert_eq!(here, events);
        // Left to the consumer, each skip comes in its place, at the input's line and column.
        assert_eq!(there, framed);
    }

    #[tokio::test]
    async fn parsed_by_the_consumer_every_event_arrives_in_order() {
        let input = events(5_000);
        let mut reader = ReaderThread::spawn(move || Ok(io::Cursor::new(input)));
        // The thread may have parsed its first reads already: both kinds of batch follow in order.
        reader.parse_on_consumer();
        for index in 0..5_000 {
            let event = reader.next().await.expect("every event arrives");
            assert_eq!(event.name(), Some(format!("p{index}").as_str()));
        }
        assert!(reader.next().await.is_none());
        assert!(reader.take_failure().is_none(), "a real end is no failure");
    }

    #[tokio::test]
    async fn taken_by_a_router_documents_come_as_framed_in_order_then_the_error() {
        let mut input = events(5_000);
        input.extend_from_slice(b"not json at all\n");
        let mut reader = ReaderThread::spawn(move || Ok(FailAfter(input)));
        // The thread may have parsed its first reads already: events, then documents, in order.
        reader.parse_on_consumer();
        let (mut documents, mut index, mut malformed) = (0, 0, Vec::new());
        let mut check = |taken: Taken<'_>| {
            let event = match taken {
                Taken::Event(event) => event,
                Taken::Document { text, line, column } => {
                    documents += 1;
                    assert_eq!((line, column), (index + malformed.len() + 1, 1));
                    match super::super::document::parse(text, line, column) {
                        Item::Event(event) => event,
                        Item::Skipped(skipped) => {
                            malformed.push(skipped.line);
                            return;
                        }
                    }
                }
            };
            assert_eq!(event.name(), Some(format!("p{index}").as_str()));
            index += 1;
        };
        loop {
            match reader.next_taken().await {
                Ok(Some(taken)) => check(taken),
                Ok(None) => panic!("the input ends with an error"),
                Err(err) => {
                    assert_eq!(err.to_string(), "disk on fire");
                    break;
                }
            }
            // What was read already, without waiting.
            while let Some(taken) = reader.try_next_taken() {
                check(taken);
            }
        }
        assert_eq!(index, 5_000, "every event");
        assert_eq!(
            malformed,
            [5_001],
            "the malformed line, framed as any, judged by the consumer"
        );
        assert!(documents > 0, "left to the consumer, documents come unparsed");
    }

    #[tokio::test]
    async fn a_failed_open_is_the_failure() {
        let mut reader = ReaderThread::spawn(|| std::fs::File::open("/nonexistent/memo-test"));
        assert!(reader.next().await.is_none());
        assert_eq!(reader.take_failure().unwrap().kind(), io::ErrorKind::NotFound);
    }
}
