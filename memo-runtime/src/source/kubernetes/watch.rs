//! One watch of one kind (in one namespace, or all): kube-runtime's watcher, retried with its
//! default backoff, every failure logged with the kind and the delay before the next attempt.

use super::bookkeeping::{Bookkeeping, Change};
use super::object::Object;
use super::sharing::{Moved, Share};
use crate::api::event::Event;
use crate::observe::health::Connection;
use futures_core::Stream;
use kube::api::{Api, ApiResource};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

type Watcher = Pin<Box<dyn Stream<Item = watcher::Result<watcher::Event<Object>>> + Send>>;

fn start(api: &Api<Object>) -> Watcher {
    Box::pin(watcher::watcher(api.clone(), watcher::Config::default()))
}

/// The events of one watch, in the order the API server sent them. It never ends by itself:
/// failures are logged and retried.
pub(super) struct Watch {
    api: Api<Object>,
    resource: ApiResource,
    /// `"all namespaces"` or `"namespace NS"`, for the logs.
    scope: String,
    watcher: Watcher,
    backoff: DefaultBackoff,
    retry: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the last attempt failed, to log the recovery.
    failing: bool,
    /// Whether the watch has listed since it started or last failed, as reported to `connection`.
    connected: bool,
    connection: Connection,
    book: Bookkeeping,
    ready: VecDeque<Event>,
    /// This replica's share of the buckets moved (`--shard auto`).
    moves: Option<tokio::sync::mpsc::UnboundedReceiver<Moved>>,
    /// Whether the watcher has sent nothing since it (re)started: a list is still to come, which
    /// sees the buckets as they are then.
    pristine: bool,
}

impl Watch {
    pub(super) fn new(api: Api<Object>, resource: ApiResource, namespace: Option<&str>) -> Self {
        let scope = match namespace {
            Some(namespace) => format!("namespace {namespace}"),
            None => "all namespaces".to_owned(),
        };
        Watch {
            watcher: start(&api),
            api,
            resource,
            scope,
            backoff: DefaultBackoff::default(),
            retry: None,
            failing: false,
            connected: false,
            connection: Connection::connecting(1),
            book: Bookkeeping::default(),
            ready: VecDeque::new(),
            moves: None,
            pristine: true,
        }
    }

    /// The same watch, keeping only the objects of this replica's buckets (`--shard auto`), and
    /// listing again when it gains buckets.
    pub(super) fn sharing(mut self, share: Share) -> Self {
        self.book = Bookkeeping::sharing(share.owned);
        self.moves = Some(share.moves);
        self
    }

    /// What a move of this replica's share asks of the watch.
    fn moved(&mut self, moved: Moved) {
        self.book.forget_others();
        if moved == Moved::Gained && !self.pristine {
            // Nothing was kept of the gained buckets' objects: read them again, as after a
            // restart. The list's objects of buckets kept all along are known, unchanged: no
            // events for them.
            tracing::debug!(
                target: "memo",
                kind = %self.resource.kind,
                "shard auto: listing {} in {} again for the buckets gained",
                self.resource.plural,
                self.scope,
            );
            self.watcher = start(&self.api);
            self.pristine = true;
            self.retry = None;
        }
    }

    /// The same watch, reporting whether it is connected to `connection` (which counts it as not
    /// connected yet).
    pub(super) fn reporting_to(mut self, connection: Connection) -> Self {
        self.connection = connection;
        self
    }

    fn record(&mut self, event: watcher::Event<Object>) {
        // `Init` comes before the list is asked for: it says nothing about the connection.
        if !matches!(event, watcher::Event::Init) {
            self.pristine = false;
        }
        if !self.connected && !matches!(event, watcher::Event::Init) {
            self.connected = true;
            self.connection.part_connected();
        }
        let change = match event {
            watcher::Event::Init => Change::Relist,
            watcher::Event::InitApply(object) => Change::Listed(complete(&self.resource, object)),
            watcher::Event::InitDone => Change::ListDone,
            watcher::Event::Apply(object) => Change::Applied(complete(&self.resource, object)),
            watcher::Event::Delete(object) => Change::Deleted(complete(&self.resource, object)),
        };
        self.book.record(change, &mut self.ready);
    }

    fn failed(&mut self, err: &watcher::Error) {
        // The default backoff never gives up; should it, keep retrying at its ceiling.
        let delay = self.backoff.next().unwrap_or(Duration::from_secs(30));
        tracing::warn!(
            target: "memo",
            kind = %self.resource.kind,
            api_version = %self.resource.api_version,
            "watching {} in {} failed: {err}; retrying in {delay:.1?}",
            self.resource.plural,
            self.scope,
        );
        self.failing = true;
        if self.connected {
            self.connected = false;
            self.connection.part_disconnected();
        }
        self.retry = Some(Box::pin(tokio::time::sleep(delay)));
    }
}

/// The object as handlers see it, with the `kind` and `apiVersion` that API servers leave out
/// of list items.
pub(super) fn complete(resource: &ApiResource, object: Object) -> Arc<Value> {
    let mut fields = match object.body {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    for (field, value) in [("apiVersion", &resource.api_version), ("kind", &resource.kind)] {
        // Watch events carry both already: no allocation for them.
        if fields.get(field).and_then(Value::as_str) != Some(value) {
            fields.insert(field.to_owned(), Value::String(value.clone()));
        }
    }
    Arc::new(Value::Object(fields))
}

impl Stream for Watch {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        while let Some(moves) = &mut this.moves
            && let Poll::Ready(Some(moved)) = moves.poll_recv(cx)
        {
            this.moved(moved);
        }
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(event));
            }
            if let Some(retry) = &mut this.retry {
                ready!(retry.as_mut().poll(cx));
                this.retry = None;
            }
            match ready!(this.watcher.as_mut().poll_next(cx)) {
                Some(Ok(event)) => {
                    this.backoff.reset();
                    if this.failing {
                        this.failing = false;
                        tracing::info!(
                            target: "memo",
                            kind = %this.resource.kind,
                            api_version = %this.resource.api_version,
                            "watching {} in {} again",
                            this.resource.plural,
                            this.scope,
                        );
                    }
                    this.record(event);
                }
                Some(Err(err)) => this.failed(&err),
                // kube's watcher does not end; if it ever did, the source would end with it.
                None => return Poll::Ready(None),
            }
        }
    }
}
