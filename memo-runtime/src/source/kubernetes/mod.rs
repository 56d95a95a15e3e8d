//! The Kubernetes API as the event source: a kube-rs watch of every kind the handlers select.

mod bookkeeping;
mod cluster;
#[cfg(test)]
mod cost;
mod discovery;
// The tests' fake API server, for the unit tests of what writes to it.
mod events;
#[cfg(test)]
#[path = "../../../tests/support/fake_api.rs"]
mod fake_api;
mod leases;
mod object;
mod sharing;
mod watch;
mod writer;

pub(crate) use cluster::ClientOnly;
pub(crate) use leases::KubeLeaser;

use super::EventSource;
use crate::api::error::Result;
use crate::api::event::Event;
use crate::observe::health::Connection;
use kube::Client;
use kube::api::Api;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A source watching, through `client`, every kind a registered event or timer handler selects,
/// in `namespaces` (all namespaces if there are none; cluster-scoped kinds are watched whole).
/// `memo_runtime::run()` without `--source` uses this, with `--namespace` flags.
///
/// Every selector (`"KopfExample"`, `"kopfexample"`, `"kopfexamples"`,
/// `"kopfexamples.kopf.dev"`) is resolved through API discovery first: a kind the cluster does not
/// serve fails here with [`Error::UnknownKinds`](crate::Error::UnknownKinds), naming the handler
/// and its source location, before any event.
///
/// The watches are kube-runtime's [`watcher`](kube::runtime::watcher()), retried with its
/// default backoff (every failure logged with the kind and the delay before the next attempt);
/// they never end by themselves and stop when the source is dropped. The last `resourceVersion`
/// of every object is kept, so that:
/// - an object seen for the first time is `ADDED`, a changed one `MODIFIED`, a deleted one
///   `DELETED`;
/// - after a reconnect or a `410 Gone`, objects re-listed unchanged make no event (their handlers
///   do not run again and their memos stay), and an object deleted while the watch was down gets
///   a `DELETED` (with its last known body) once the relist is complete.
///
/// A new process sees every existing object as `ADDED`, as kopf does (memos live in memory);
/// with the operator's progress kept on the objects (the default for this source), their
/// handlers run only for what the earlier process had not handled: see the README's "Restarts
/// and deletions". Handlers' patches and Events go to this cluster.
///
/// ```no_run
/// use memo_runtime::prelude::*;
///
/// #[handler(event = "KopfExample")]
/// fn pinged(memo: &mut Memo) {
///     let n = memo.get::<u64>("counter").copied().unwrap_or(0);
///     memo.insert("counter", n + 1);
/// }
///
/// #[tokio::main]
/// async fn main() -> memo_runtime::Result<()> {
///     let client = memo_runtime::kube::Client::try_default()
///         .await
///         .map_err(|err| Error::Kubernetes(err.to_string()))?;
///     let source = memo_runtime::source::kubernetes(client, ["default", "staging"]).await?;
///     Operator::new().source(source).run().await
/// }
/// ```
pub async fn kubernetes<N: Into<String>>(
    client: Client,
    namespaces: impl IntoIterator<Item = N>,
) -> Result<EventSource> {
    let namespaces: Vec<String> = namespaces.into_iter().map(Into::into).collect();
    let watched = discovery::resolve(&client, &crate::contract::registry::registered()).await?;
    if watched.is_empty() {
        tracing::info!(target: "memo", "no handler selects a kind: nothing to watch");
        let cluster = std::sync::Arc::new(ClientOnly(client));
        return Ok(EventSource::from_stream(Nothing).watching(cluster));
    }
    let writable = watched
        .iter()
        .map(|watched| cluster::Writable {
            resource: watched.resource.clone(),
            status_subresource: watched.status_subresource,
        })
        .collect();
    let cluster = std::sync::Arc::new(cluster::KubeCluster::new(client.clone(), writable));
    let mut sources = Vec::new();
    for watched in watched {
        let resource = &watched.resource;
        let kind = format!("{}.{}", resource.plural, resource.group);
        let kind = kind.trim_end_matches('.');
        let handlers = watched.handlers.join(", ");
        if watched.namespaced && !namespaces.is_empty() {
            for namespace in &namespaces {
                tracing::info!(target: "memo", "watching {kind} in namespace {namespace} (for {handlers})");
                let api = Api::<object::Object>::namespaced_with(client.clone(), namespace, resource);
                sources.push(watch::Watch::new(api, resource.clone(), Some(namespace)).sharing(cluster.share()));
            }
        } else {
            let scope = if watched.namespaced {
                "all namespaces"
            } else {
                "the cluster"
            };
            tracing::info!(target: "memo", "watching {kind} in {scope} (for {handlers})");
            let api = Api::<object::Object>::all_with(client.clone(), resource);
            sources.push(watch::Watch::new(api, resource.clone(), None).sharing(cluster.share()));
        }
    }
    // Each watch is connected from its first successful list until a failure, and again from
    // its next success.
    let connection = Connection::connecting(sources.len());
    let mut sources: Vec<EventSource> = sources
        .into_iter()
        .map(|watch| EventSource::from_stream(watch.reporting_to(connection.clone())))
        .collect();
    let source = match sources.len() {
        1 => sources.remove(0),
        _ => EventSource::merge(sources),
    };
    Ok(source.connected_by(connection).watching(cluster))
}

/// The source of an operator with nothing to watch: it runs until it is stopped.
struct Nothing;

impl futures_core::Stream for Nothing {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Event>> {
        Poll::Pending
    }
}
