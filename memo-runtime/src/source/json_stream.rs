//! A watch stream read from an async reader, framed as the bytes arrive: more is read only when
//! what is buffered gives nothing, so an endless stream is handled document by document.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::document::{Item, Skipped};
use super::framer::{LineFramer, READ_CHUNK};
use crate::api::event::Event;

/// Reads watch events from a byte stream as they arrive.
pub(crate) struct JsonStream {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    framer: LineFramer,
    /// Why reading stopped early, until the owner asks.
    failure: Option<std::io::Error>,
    /// Everything skipped so far, for tests to check.
    #[cfg(test)]
    skipped: Vec<Skipped>,
}

impl JsonStream {
    pub(crate) fn new(reader: Box<dyn AsyncRead + Send + Unpin>) -> Self {
        Self {
            reader,
            framer: LineFramer::new(),
            failure: None,
            #[cfg(test)]
            skipped: Vec::new(),
        }
    }

    /// Says which resources this replica handles: the others' documents are dropped unparsed.
    pub(crate) fn shard(&self, sharding: &crate::api::shard::Sharding) {
        let _ = self.framer.shard().set(sharding.clone());
    }

    /// Why the stream ended early: the read error, once (`None` after a real end of input).
    pub(crate) fn take_failure(&mut self) -> Option<std::io::Error> {
        self.failure.take()
    }

    /// The next event among the bytes already read, without reading more.
    pub(crate) fn try_next(&mut self) -> Option<Event> {
        loop {
            match self.framer.next_item()? {
                Item::Event(event) => return Some(event),
                Item::Skipped(skipped) => self.skip(skipped),
            }
        }
    }

    fn skip(&mut self, skipped: Skipped) {
        skipped.log();
        #[cfg(test)]
        self.skipped.push(skipped);
    }

    /// The next valid event, or `None` at the end of input or after a read error (logged, and
    /// kept for [`JsonStream::take_failure`]).
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            match self.framer.next_item() {
                Some(Item::Event(event)) => return Some(event),
                Some(Item::Skipped(skipped)) => {
                    self.skip(skipped);
                    continue;
                }
                None if self.framer.is_finished() => return None,
                None => {}
            }
            let buf = self.framer.buffer();
            buf.reserve(READ_CHUNK);
            match self.reader.read_buf(buf).await {
                Ok(0) => self.framer.finish(),
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    tracing::error!(line = self.framer.line(), "watch stream: read failed, stopping: {err}");
                    self.failure = Some(err);
                    // What was read is all there will be: a last document complete but for its
                    // newline is still delivered, an unfinished one reported.
                    self.framer.finish();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::EventType;
    use serde_json::json;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncWriteExt, ReadBuf};

    /// Yields its data in reads of 1 to 7 bytes, then optionally an error.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_at_end: bool,
    }

    impl Trickle {
        fn new(data: &[u8]) -> Self {
            Self {
                data: data.to_vec(),
                at: 0,
                step: 0,
                fail_at_end: false,
            }
        }
    }

    impl AsyncRead for Trickle {
        fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if this.at == this.data.len() && this.fail_at_end {
                return Poll::Ready(Err(io::Error::other("connection reset")));
            }
            this.step += 1;
            let want = 1 + (this.step * 5) % 7;
            let n = want.min(this.data.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// Reads everything; returns the events and what was skipped.
    async fn run_reader(reader: Box<dyn AsyncRead + Send + Unpin>) -> (Vec<Event>, Vec<Skipped>) {
        let mut stream = JsonStream::new(reader);
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event);
        }
        // Still over when asked again.
        assert!(stream.next().await.is_none());
        (events, stream.skipped)
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.name().unwrap_or("?")).collect()
    }

    fn pod(ty: &str, name: &str) -> String {
        json!({"type": ty, "object": {"kind": "Pod", "metadata": {"name": name, "namespace": "default"}}}).to_string()
    }

    #[tokio::test]
    async fn tiny_reads_give_what_one_read_gives() {
        let pretty =
            serde_json::to_string_pretty(&json!({"type": "MODIFIED", "object": {"metadata": {"name": "b"}}})).unwrap();
        let input = format!(
            "{}\nnot json\n{pretty}\n{{\"type\": \"ADDED\", \"obj\n\n{}",
            pod("ADDED", "a"),
            pod("DELETED", "c")
        );
        let whole = run_reader(Box::new(io::Cursor::new(input.clone().into_bytes()))).await;
        let trickled = run_reader(Box::new(Trickle::new(input.as_bytes()))).await;
        assert_eq!(whole, trickled);
        assert_eq!(names(&whole.0), ["a", "b", "c"]);
        let at: Vec<(usize, usize)> = whole.1.iter().map(|s| (s.line, s.column)).collect();
        // serde_json reads `n` as the start of `null`: the error is at the `o`.
        assert_eq!(at, [(2, 2), (11, 22)]);
    }

    #[tokio::test]
    async fn a_read_error_ends_the_stream_after_what_was_read() {
        let mut reader = Trickle::new(format!("{}\n{}", pod("ADDED", "a"), pod("ADDED", "b")).as_bytes());
        reader.fail_at_end = true;
        let mut stream = JsonStream::new(Box::new(reader));
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event);
        }
        let failure = stream.take_failure().expect("the read error is kept");
        assert_eq!(failure.to_string(), "connection reset");
        assert!(stream.take_failure().is_none(), "and handed over once");
        // "b" was whole, but for its newline, when the read failed.
        assert_eq!(names(&events), ["a", "b"]);
        assert_eq!(stream.skipped, vec![]);

        // A document the failure cut is reported as cut.
        let mut reader = Trickle::new(b"{\"type\": \"ADDED\", \"obj");
        reader.fail_at_end = true;
        let mut stream = JsonStream::new(Box::new(reader));
        assert!(stream.next().await.is_none());
        assert_eq!(stream.take_failure().unwrap().to_string(), "connection reset");
        assert_eq!(stream.skipped.len(), 1, "{:?}", stream.skipped);
        assert!(
            stream.skipped[0]
                .reason
                .starts_with("incomplete document (starts at line 1): EOF while parsing"),
            "{}",
            stream.skipped[0].reason
        );
    }

    #[tokio::test]
    async fn events_arrive_before_the_input_ends() {
        let (mut writer, reader) = tokio::io::duplex(4096);
        let mut stream = JsonStream::new(Box::new(reader));
        writer.write_all(pod("ADDED", "a").as_bytes()).await.unwrap();
        writer.write_all(b"\n").await.unwrap();
        let first = stream.next().await.expect("first event while open");
        assert_eq!(first.object["metadata"]["name"], "a");
        // The last line needs no newline: the end of input ends it.
        writer.write_all(pod("DELETED", "a").as_bytes()).await.unwrap();
        drop(writer);
        assert_eq!(stream.next().await.unwrap().r#type, EventType::Deleted);
        assert!(stream.next().await.is_none());
        assert!(stream.take_failure().is_none(), "a real end is no failure");
    }

    #[tokio::test]
    async fn ready_events_are_taken_without_reading() {
        let input = format!("{}\nnot json\n{}\n", pod("ADDED", "a"), pod("DELETED", "a"));
        let mut stream = JsonStream::new(Box::new(io::Cursor::new(input.into_bytes())));
        assert!(stream.try_next().is_none(), "nothing was read yet");
        assert_eq!(stream.next().await.unwrap().r#type, EventType::Added);
        // The first read took the whole input: the rest is served from the buffer.
        assert_eq!(stream.try_next().unwrap().r#type, EventType::Deleted);
        assert!(stream.try_next().is_none());
        assert_eq!(stream.skipped.len(), 1);
        assert!(stream.next().await.is_none());
        assert!(stream.take_failure().is_none(), "a real end is no failure");
    }
}
