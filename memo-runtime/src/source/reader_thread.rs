//! Watch events read and parsed from a blocking reader on a thread of its own, which nobody
//! ever waits for: dropping the source abandons the thread, blocked in a read or not.
//!
//! Parsing there too lets the event loop only route: with several workers the loop is the one
//! serial step, and parsing on it made more workers slower than one.

use super::document::Item;
use super::framer::{LineFramer, READ_CHUNK};
use crate::api::event::Event;
use crate::api::shard::Sharding;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Batches read ahead of the consumer: enough to keep it busy, little enough to bound memory
/// when it is slow.
const AHEAD: usize = 4;

pub(crate) struct ReaderThread {
    /// Which resources this replica handles, for the thread's framer.
    shard: Arc<OnceLock<Sharding>>,
    batches: mpsc::Receiver<io::Result<Vec<Event>>>,
    current: std::vec::IntoIter<Event>,
    failure: Option<io::Error>,
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
        let read = move || {
            // A send fails once the consumer is gone (the operator stopped): then stop reading.
            let outcome = open()
                .and_then(|reader| read_blocking(framer, reader, |batch| sender.blocking_send(Ok(batch)).is_ok()));
            if let Err(err) = outcome {
                let _ = failures.blocking_send(Err(err));
            }
        };
        let mut this = ReaderThread {
            shard,
            batches,
            current: Vec::new().into_iter(),
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

    /// The next event if one was parsed already.
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

    fn take(&mut self, batch: io::Result<Vec<Event>>) {
        match batch {
            Ok(batch) => self.current = batch.into_iter(),
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
/// read's events at once: `emit` gets them in batches (one batch per read that produced events)
/// and returns `false` to stop. Ends at the end of input (`Ok`) or with the read error.
fn read_blocking(
    mut framer: LineFramer,
    mut reader: impl Read,
    mut emit: impl FnMut(Vec<Event>) -> bool,
) -> io::Result<()> {
    let mut failure = None;
    loop {
        let mut batch = Vec::new();
        while let Some(item) = framer.next_item() {
            match item {
                Item::Event(event) => batch.push(event),
                Item::Skipped(skipped) => skipped.log(),
            }
        }
        if !batch.is_empty() && !emit(batch) {
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

    #[tokio::test]
    async fn a_failed_open_is_the_failure() {
        let mut reader = ReaderThread::spawn(|| std::fs::File::open("/nonexistent/memo-test"));
        assert!(reader.next().await.is_none());
        assert_eq!(reader.take_failure().unwrap().kind(), io::ErrorKind::NotFound);
    }
}
