//! Where events come from: an in-process channel, or a Kubernetes watch stream.

mod json;
mod reader_thread;

use crate::{Error, Event, Result};
use tokio::sync::mpsc;

/// The stream of events an [`Operator`](crate::Operator) handles, set with
/// [`Operator::source`](crate::Operator::source).
///
/// Make one with [`channel`] (events sent from your own code), [`json_stream`] or
/// [`json_reader`] (a `kubectl --watch` stream). The operator stops, gracefully, when its source
/// ends; a source that fails (a read error) stops it with that error.
pub struct EventSource {
    inner: Inner,
}

enum Inner {
    Channel(mpsc::Receiver<Event>),
    Json(json::JsonStream),
    Thread(reader_thread::ReaderThread),
}

impl EventSource {
    /// The next event if one is ready now, without waiting. `None` says nothing is ready (or the
    /// source cannot tell without waiting); call [`next`](EventSource::next) to wait.
    pub fn try_next(&mut self) -> Option<Event> {
        match &mut self.inner {
            Inner::Channel(receiver) => receiver.try_recv().ok(),
            Inner::Json(stream) => stream.try_next(),
            Inner::Thread(reader) => reader.try_next(),
        }
    }

    /// The next event, or `None` once the source has ended (or failed: the operator tells the
    /// two apart and stops with the failure).
    pub async fn next(&mut self) -> Option<Event> {
        match &mut self.inner {
            Inner::Channel(receiver) => receiver.recv().await,
            Inner::Json(stream) => stream.next().await,
            Inner::Thread(reader) => reader.next().await,
        }
    }

    /// The next event, `Ok(None)` at a real end of input, or why the source failed.
    pub(crate) async fn next_or_failure(&mut self) -> Result<Option<Event>> {
        match &mut self.inner {
            Inner::Channel(receiver) => Ok(receiver.recv().await),
            Inner::Json(stream) => match stream.next().await {
                Some(event) => Ok(Some(event)),
                None => stream.take_failure().map_or(Ok(None), |err| Err(Error::Io(err))),
            },
            Inner::Thread(reader) => match reader.next().await {
                Some(event) => Ok(Some(event)),
                None => reader.take_failure().map_or(Ok(None), |err| Err(Error::Io(err))),
            },
        }
    }
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Channel(_) => "channel",
            Inner::Json(_) => "json_stream",
            Inner::Thread(_) => "json_reader",
        };
        f.debug_struct("EventSource").field("kind", &kind).finish()
    }
}

/// The sending half of [`channel`]. Clone it to send from several tasks; the source ends
/// when every sender is dropped.
#[derive(Clone, Debug)]
pub struct EventSender {
    sender: mpsc::Sender<Event>,
}

impl EventSender {
    /// Sends one event, waiting while the channel is full.
    ///
    /// Fails with [`Error::Closed`] once the operator has stopped.
    pub async fn send(&self, event: Event) -> Result<()> {
        self.sender.send(event).await.map_err(|_| Error::Closed)
    }
}

/// A bounded in-process event channel: events sent on the [`EventSender`] are handled by the
/// operator given the [`EventSource`].
///
/// ```
/// use memo_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memo_runtime::Result<()> {
/// let (events, source) = memo_runtime::source::channel(16);
/// let running = tokio::spawn(Operator::new().handle_signals(false).source(source).run());
/// events.send(Event::added(serde_json::json!({
///     "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}
/// }))).await?;
/// drop(events); // the source ends, the operator drains and returns
/// running.await.expect("the operator task panicked")?;
/// # Ok(())
/// # }
/// ```
pub fn channel(capacity: usize) -> (EventSender, EventSource) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (
        EventSender { sender },
        EventSource {
            inner: Inner::Channel(receiver),
        },
    )
}

/// Reads Kubernetes watch events as `kubectl get KIND -A --watch --output-watch-events -o json`
/// prints them: a stream of `{"type": "ADDED", "object": {...}}` documents, pretty-printed or
/// one per line.
///
/// Malformed input is logged with its line and column and skipped; the stream goes on with the
/// next document. Documents that are not `ADDED`/`MODIFIED`/`DELETED` events (such as
/// `BOOKMARK`) are skipped too. The source ends at the end of the input.
///
/// ```
/// use memo_runtime::EventType;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let input: &[u8] = br#"{"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "p"}}}
/// this line is not json
/// {"type": "DELETED", "object": {"kind": "Pod", "metadata": {"name": "p"}}}
/// "#;
/// let mut source = memo_runtime::source::json_stream(input);
/// assert_eq!(source.next().await.unwrap().r#type, EventType::Added);
/// assert_eq!(source.next().await.unwrap().r#type, EventType::Deleted);
/// assert!(source.next().await.is_none());
/// # }
/// ```
pub fn json_stream<R>(reader: R) -> EventSource
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    EventSource {
        inner: Inner::Json(json::JsonStream::new(Box::new(reader))),
    }
}

/// [`json_stream`] over a blocking reader — standard input, a file, a FIFO — read and parsed on a
/// thread of its own.
///
/// Reads from standard input and FIFOs cannot be cancelled: an async reader built on them keeps
/// the runtime (and the process) waiting for the next byte after the operator has stopped. This
/// one hands events over from its own thread, which a stop simply leaves behind, so a `SIGTERM`
/// ends the process at once even while the input is silent; and it parses there, in parallel
/// with the handlers, handing over each read's events at once. A read error fails the source
/// (the operator stops with it); the end of the input ends it.
///
/// ```
/// use memo_runtime::EventType;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let input = std::io::Cursor::new(
///     br#"{"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "p"}}}"#.to_vec(),
/// );
/// let mut source = memo_runtime::source::json_reader(input);
/// assert_eq!(source.next().await.unwrap().r#type, EventType::Added);
/// assert!(source.next().await.is_none());
/// # }
/// ```
pub fn json_reader<R>(reader: R) -> EventSource
where
    R: std::io::Read + Send + 'static,
{
    EventSource {
        inner: Inner::Thread(reader_thread::ReaderThread::spawn(move || Ok(reader))),
    }
}

/// [`json_reader`] over a file or FIFO, opened on the reading thread (opening a FIFO waits for a
/// writer). A file that cannot be opened or read fails the source, naming the path.
///
/// ```no_run
/// let source = memo_runtime::source::json_file("events.json");
/// # drop(source);
/// ```
pub fn json_file(path: impl Into<std::path::PathBuf>) -> EventSource {
    let path = path.into();
    let open = move || {
        let file = std::fs::File::open(&path).map_err(|err| named(&path, err))?;
        Ok(NamedReader { file, path })
    };
    EventSource {
        inner: Inner::Thread(reader_thread::ReaderThread::spawn(open)),
    }
}

fn named(path: &std::path::Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("`{}`: {err}", path.display()))
}

/// Names the path in its read errors too.
struct NamedReader {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl std::io::Read for NamedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.file, buf).map_err(|err| named(&self.path, err))
    }
}
