//! Where events come from: an in-process channel, or a Kubernetes watch stream.

mod json;

use crate::{Error, Event, Result};
use tokio::sync::mpsc;

/// The stream of events an [`Operator`](crate::Operator) handles, set with
/// [`Operator::source`](crate::Operator::source).
///
/// Make one with [`channel`] (events sent from your own code) or [`json_stream`] (a
/// `kubectl --watch` stream). The operator stops, gracefully, when its source ends.
pub struct EventSource {
    inner: Inner,
}

enum Inner {
    Channel(mpsc::Receiver<Event>),
    Json(json::JsonStream),
}

impl EventSource {
    /// The next event if one is ready now, without waiting. `None` says nothing is ready (or the
    /// source cannot tell without waiting); call [`next`](EventSource::next) to wait.
    pub fn try_next(&mut self) -> Option<Event> {
        match &mut self.inner {
            Inner::Channel(receiver) => receiver.try_recv().ok(),
            Inner::Json(_) => None,
        }
    }

    /// The next event, or `None` once the source has ended.
    pub async fn next(&mut self) -> Option<Event> {
        match &mut self.inner {
            Inner::Channel(receiver) => receiver.recv().await,
            Inner::Json(stream) => stream.next().await,
        }
    }
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Channel(_) => "channel",
            Inner::Json(_) => "json_stream",
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
