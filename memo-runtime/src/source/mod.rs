//! Where events come from: the Kubernetes API ([`kubernetes`], feature `kube`), an in-process
//! channel, a `kubectl --watch` stream, any `Stream` of events, or several of them merged.

mod channel;
pub(crate) mod document;
mod framer;
mod json_stream;
#[cfg(feature = "kube")]
mod kubernetes;
mod merge;
mod reader_thread;
mod unparsed;

#[cfg(feature = "kube")]
pub(crate) use kubernetes::ClientOnly;
#[cfg(feature = "kube")]
pub(crate) use kubernetes::KubeLeaser;
#[cfg(feature = "kube")]
pub use kubernetes::kubernetes;

/// The watch-stream framer alone, for memo-bench (measurement 9); not an API.
#[doc(hidden)]
pub mod splitters {
    use super::document::Item;

    /// Events and skipped documents of `input` arriving in `chunk`-byte reads, framed as the
    /// stream sources frame them.
    pub fn line_framer(input: &[u8], chunk: usize) -> (usize, usize) {
        let (mut events, mut skipped) = (0, 0);
        super::framer::split_all(input, chunk, |item| match item {
            Item::Event(_) => events += 1,
            Item::Skipped(_) => skipped += 1,
        });
        (events, skipped)
    }
}

use crate::api::error::{Error, Result};
use crate::api::event::Event;
use crate::contract::cluster::Cluster;
use crate::observe::health::Connection;
use futures_core::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc;

/// What the router takes from a source: an event, or, from a stream read on a thread of its own
/// once the lanes parse it, a document as it was framed.
pub(crate) enum Taken<'a> {
    Event(Event),
    /// A document's bytes, found at `line` and `column` of the input.
    Document {
        text: &'a [u8],
        line: usize,
        column: usize,
    },
}

/// The stream of events an [`Operator`](crate::Operator) handles, set with
/// [`Operator::source`](crate::Operator::source).
///
/// Make one with [`channel`] (events sent from your own code), [`json_stream`] or
/// [`json_reader`] (a `kubectl --watch` stream), [`EventSource::from_stream`] (any stream of
/// events), or [`EventSource::merge`] (several at once). The operator stops, gracefully, when its
/// source ends; a source that fails (a read error) stops it with that error.
pub struct EventSource {
    inner: Inner,
    /// What tells whether the parts of the source that can lose a connection have it.
    connections: Vec<Connection>,
    /// The cluster it watches, where handlers' patches and Events go.
    cluster: Option<Arc<dyn Cluster>>,
}

enum Inner {
    Channel(channel::Receiver),
    Json(json_stream::JsonStream),
    Thread(reader_thread::ReaderThread),
    /// Any stream: one of events ([`EventSource::from_stream`]) is read as one that never fails.
    Stream(Pin<Box<dyn Stream<Item = Result<Event>> + Send>>),
    Merged(merge::Merged),
}

impl EventSource {
    fn of(inner: Inner) -> EventSource {
        EventSource {
            inner,
            connections: Vec::new(),
            cluster: None,
        }
    }

    /// The same source, watching `cluster`.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(crate) fn watching(mut self, cluster: Arc<dyn Cluster>) -> EventSource {
        self.cluster = Some(cluster);
        self
    }

    /// Says which resources this replica handles (`--shard`): a stream source then drops the
    /// documents of the others after reading their uid, before parsing them.
    pub(crate) fn shard(&self, sharding: &crate::api::shard::Sharding) {
        match &self.inner {
            Inner::Json(stream) => stream.shard(sharding),
            Inner::Thread(thread) => thread.shard(sharding),
            Inner::Channel(_) | Inner::Stream(_) | Inner::Merged(_) => {}
        }
    }

    /// Says that the lanes parse what this source reads: a stream read on a thread of its own
    /// then only frames its documents. One lane parses each document as it takes it; with
    /// several, the router takes each document as it was framed ([`EventSource::try_next_taken`])
    /// and hands its bytes to a lane. Either way a document is parsed and freed on one thread:
    /// glibc's allocator makes a thread pay for freeing what another allocated.
    pub(crate) fn parse_on_consumer(&self) {
        if let Inner::Thread(thread) = &self.inner {
            thread.parse_on_consumer();
        }
    }

    /// The cluster the source watches, if it is one.
    pub(crate) fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        self.cluster.clone()
    }

    /// The same source, whose connection `connection` tells.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    pub(crate) fn connected_by(mut self, connection: Connection) -> EventSource {
        self.connections.push(connection);
        self
    }

    /// What tells whether the source is connected (nothing: it is, while it yields).
    pub(crate) fn connections(&self) -> Vec<Connection> {
        self.connections.clone()
    }

    /// A source of the events `stream` yields, in its order; it ends when the stream does.
    ///
    /// ```
    /// use memo_runtime::source::EventSource;
    /// use memo_runtime::Event;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    /// sender.send(Event::added(serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}}))).unwrap();
    /// drop(sender);
    /// // Any `futures_core::Stream<Item = Event>`: here a receiver turned into one.
    /// let stream = futures_lite_like::Receiver(receiver);
    /// let mut source = EventSource::from_stream(stream);
    /// assert_eq!(source.next().await.unwrap().name(), Some("p"));
    /// assert!(source.next().await.is_none());
    /// # }
    /// # mod futures_lite_like {
    /// #     pub struct Receiver(pub tokio::sync::mpsc::UnboundedReceiver<memo_runtime::Event>);
    /// #     impl futures_core::Stream for Receiver {
    /// #         type Item = memo_runtime::Event;
    /// #         fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>)
    /// #             -> std::task::Poll<Option<memo_runtime::Event>> { self.0.poll_recv(cx) }
    /// #     }
    /// # }
    /// ```
    pub fn from_stream(stream: impl Stream<Item = Event> + Send + 'static) -> EventSource {
        EventSource::of(Inner::Stream(Box::pin(Infallible(Box::pin(stream)))))
    }

    /// A source of the events `stream` yields that fails as the built-in sources do: the first
    /// `Err` ends it, and the operator stops with that error after its usual steps (handlers that
    /// run finish, cleanup handlers run; [`run`](crate::run) exits with 1).
    ///
    /// ```
    /// use memo_runtime::source::EventSource;
    /// use memo_runtime::{Error, Event, Operator};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    /// sender.send(Ok(Event::added(serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}})))).unwrap();
    /// sender.send(Err(Error::custom("the feed broke"))).unwrap();
    /// let source = EventSource::from_try_stream(stream::Receiver(receiver));
    /// let err = Operator::new().handle_signals(false).source(source).run().await.unwrap_err();
    /// assert_eq!(err.to_string(), "the feed broke");
    /// # }
    /// # mod stream {
    /// #     pub struct Receiver(pub tokio::sync::mpsc::UnboundedReceiver<memo_runtime::Result<memo_runtime::Event>>);
    /// #     impl futures_core::Stream for Receiver {
    /// #         type Item = memo_runtime::Result<memo_runtime::Event>;
    /// #         fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>)
    /// #             -> std::task::Poll<Option<Self::Item>> { self.0.poll_recv(cx) }
    /// #     }
    /// # }
    /// ```
    pub fn from_try_stream(stream: impl Stream<Item = Result<Event>> + Send + 'static) -> EventSource {
        EventSource::of(Inner::Stream(Box::pin(stream)))
    }

    /// One source of the events of all `sources`, each source's events in its order (between
    /// sources, as they come). It ends when all of them have ended, and fails as soon as one of
    /// them fails. An operator watching several kinds reads them this way.
    ///
    /// ```
    /// use memo_runtime::source::{channel, EventSource};
    /// use memo_runtime::Event;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let (pods, pod_source) = channel(8);
    /// let (nodes, node_source) = channel(8);
    /// let mut source = EventSource::merge([pod_source, node_source]);
    /// pods.send(Event::added(serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}}))).await?;
    /// nodes.send(Event::added(serde_json::json!({"kind": "Node", "metadata": {"name": "n"}}))).await?;
    /// drop((pods, nodes));
    /// let mut kinds = Vec::new();
    /// while let Some(event) = source.next().await {
    ///     kinds.push(event.kind().unwrap().to_owned());
    /// }
    /// kinds.sort();
    /// assert_eq!(kinds, ["Node", "Pod"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn merge(sources: impl IntoIterator<Item = EventSource>) -> EventSource {
        let sources: Vec<EventSource> = sources.into_iter().collect();
        let connections = sources
            .iter()
            .flat_map(|source| source.connections.iter().cloned())
            .collect();
        let cluster = sources.iter().find_map(EventSource::cluster);
        EventSource {
            inner: Inner::Merged(merge::Merged::new(sources)),
            connections,
            cluster,
        }
    }

    /// The same source, ending when `stop` completes: the operator then finishes what it has
    /// read and stops as at the end of any source (cleanup handlers run). Its connection status
    /// and, for a Kubernetes source, its cluster (where handlers write) are kept. Must be called
    /// on a Tokio runtime: a task reads the source until then.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (events, source) = memo_runtime::source::channel(8);
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let mut source = source.until(async move {
    ///     let _ = stopped.await;
    /// });
    /// stop.send(()).unwrap();
    /// assert!(source.next().await.is_none(), "ended, though `events` is still open");
    /// # drop(events);
    /// # }
    /// ```
    pub fn until(mut self, stop: impl Future<Output = ()> + Send + 'static) -> EventSource {
        let (sender, receiver) = mpsc::channel::<Result<Event>>(1);
        let connections = self.connections.clone();
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                let next = tokio::select! {
                    biased;
                    () = &mut stop => return,
                    next = self.next_or_failure() => next,
                };
                let (item, last) = match next {
                    Ok(Some(event)) => (Ok(event), false),
                    Ok(None) => return,
                    Err(err) => (Err(err), true),
                };
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    sent = sender.send(item) => if sent.is_err() || last { return },
                }
            }
        });
        let mut source = EventSource::from_try_stream(Receiving(receiver));
        source.connections = connections;
        source.cluster = cluster;
        source
    }

    /// For the router: the next event or framed document if one is ready now, as
    /// [`EventSource::try_next`].
    pub(crate) fn try_next_taken(&mut self) -> Option<Taken<'_>> {
        // Checked before borrowing: a borrow returned from one branch would hold for the other.
        if !matches!(self.inner, Inner::Thread(_)) {
            return self.try_next().map(Taken::Event);
        }
        match &mut self.inner {
            Inner::Thread(reader) => reader.try_next_taken(),
            _ => None,
        }
    }

    /// For the router: the next event or framed document, `Ok(None)` at a real end of input, or
    /// why the source failed, as [`EventSource::next_or_failure`].
    pub(crate) async fn next_taken_or_failure(&mut self) -> Result<Option<Taken<'_>>> {
        if !matches!(self.inner, Inner::Thread(_)) {
            return Ok(self.next_or_failure().await?.map(Taken::Event));
        }
        match &mut self.inner {
            Inner::Thread(reader) => reader.next_taken().await.map_err(Error::Io),
            _ => Ok(None),
        }
    }

    /// The next event if one is ready now, without waiting. `None` says nothing is ready (or the
    /// source cannot tell without waiting); call [`next`](EventSource::next) to wait.
    pub fn try_next(&mut self) -> Option<Event> {
        match &mut self.inner {
            Inner::Channel(receiver) => receiver.try_recv(),
            Inner::Json(stream) => stream.try_next(),
            Inner::Thread(reader) => reader.try_next(),
            // Polled with a waker that wakes nothing: the wait, if any, happens in `next`, which
            // polls again with the real one.
            Inner::Stream(stream) => match stream.as_mut().poll_next(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Some(Ok(event))) => Some(event),
                // A failure is for `next_or_failure` to report: `Failed` keeps it.
                Poll::Ready(Some(Err(err))) => {
                    self.inner = Inner::Stream(Box::pin(Failed(Some(err))));
                    None
                }
                Poll::Ready(None) | Poll::Pending => None,
            },
            Inner::Merged(merged) => merged.try_next(),
        }
    }

    /// The next event, or `None` once the source has ended (or failed: the operator tells the
    /// two apart and stops with the failure).
    pub async fn next(&mut self) -> Option<Event> {
        match &mut self.inner {
            Inner::Channel(receiver) => receiver.recv().await,
            Inner::Json(stream) => stream.next().await,
            Inner::Thread(reader) => reader.next().await,
            Inner::Stream(stream) => std::future::poll_fn(|cx| stream.as_mut().poll_next(cx))
                .await
                .and_then(Result::ok),
            Inner::Merged(merged) => merged.next().await.ok().flatten(),
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
            Inner::Stream(stream) => std::future::poll_fn(|cx| stream.as_mut().poll_next(cx))
                .await
                .transpose(),
            Inner::Merged(merged) => merged.next().await,
        }
    }
}

/// A receiver of results, as a stream.
struct Receiving(mpsc::Receiver<Result<Event>>);

impl Stream for Receiving {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Channel(_) => "channel",
            Inner::Json(_) => "json_stream",
            Inner::Thread(_) => "json_reader",
            Inner::Stream(_) => "stream",
            Inner::Merged(_) => "merged",
        };
        f.debug_struct("EventSource").field("kind", &kind).finish()
    }
}

/// A stream of events as one of results that never fails. Boxed, so that it is `Unpin` whatever
/// the stream.
struct Infallible(Pin<Box<dyn Stream<Item = Event> + Send>>);

impl Stream for Infallible {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx).map(|event| event.map(Ok))
    }
}

/// A stream that has failed: yields its failure once, then ends.
struct Failed(Option<Error>);

impl Stream for Failed {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

/// The sending half of [`channel`]. Clone it to send from several tasks; the source ends
/// when every sender is dropped.
#[derive(Clone)]
pub struct EventSender {
    sender: channel::Sender,
}

impl EventSender {
    /// Sends one event, waiting while the channel is full.
    ///
    /// Fails with [`Error::Closed`] once the operator has stopped.
    pub async fn send(&self, event: Event) -> Result<()> {
        self.sender.send(event).await.map_err(|_| Error::Closed)
    }
}

impl std::fmt::Debug for EventSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSender").finish_non_exhaustive()
    }
}

/// A bounded in-process event channel: events sent on the [`EventSender`] are handled by the
/// operator given the [`EventSource`].
///
/// At most `capacity` events (at least 1) wait to be taken; a sender waits while they do. The
/// operator takes all that wait at once, so up to `capacity` more may be in its hands: events
/// from one sender keep their order.
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
    let (sender, receiver) = channel::channel(capacity);
    (EventSender { sender }, EventSource::of(Inner::Channel(receiver)))
}

/// Reads Kubernetes watch events as `kubectl get KIND -A --watch --output-watch-events -o json`
/// prints them: a stream of `{"type": "ADDED", "object": {...}}` documents.
///
/// The input is framed by lines:
/// - a document on one line of its own (leading blanks allowed), as `jq -c` or a program writes
///   them; blank lines between documents are ignored;
/// - or a pretty-printed document, as kubectl prints it: from a line that is `{` alone at
///   column 1 to the next line that starts with `}` at column 1, its other lines indented.
///
/// Two documents on one line are one malformed document; a pretty-printed document that another
/// `{` line at column 1 interrupts was cut short, and the next one starts there. Malformed input
/// is logged with its line and column and skipped (a line of garbage is skipped alone); the stream
/// goes on with the next document. Documents that are not `ADDED`/`MODIFIED`/`DELETED` events
/// (such as `BOOKMARK`) are skipped too, and so is a document over 256 MiB. The source ends at
/// the end of the input; the last document needs no newline after it.
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
    EventSource::of(Inner::Json(json_stream::JsonStream::new(Box::new(reader))))
}

/// [`json_stream`] over a blocking reader — standard input, a file, a FIFO — read and parsed on a
/// thread of its own.
///
/// The input is that of [`json_stream`]: documents one per line, or pretty-printed from a `{`
/// line to a `}` line at column 1, as `kubectl get KIND -A --watch --output-watch-events -o json`
/// prints them; malformed ones are logged with their line and column and skipped.
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
    EventSource::of(Inner::Thread(reader_thread::ReaderThread::spawn(move || Ok(reader))))
}

/// [`json_reader`] over a file or FIFO, opened on the reading thread (opening a FIFO waits for a
/// writer). A file that cannot be opened or read fails the source, naming the path.
///
/// The file holds what [`json_stream`] reads: watch documents one per line, or pretty-printed
/// from a `{` line to a `}` line at column 1, as kubectl prints them.
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
    EventSource::of(Inner::Thread(reader_thread::ReaderThread::spawn(open)))
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
