//! What a handler's writes and notes go to when the operator runs against a cluster: the seam
//! between the engine, which merges an event's patches, and the Kubernetes source, which knows
//! where each kind is written.

use crate::api::patch::Patch;
use crate::api::recorder::EventSink;
use crate::api::shard::Owned;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A write on its way.
pub(crate) type Writing<'a> = Pin<Box<dyn Future<Output = Result<Written, WriteError>> + Send + 'a>>;

/// What became of an event's patch.
#[derive(Debug, PartialEq, Eq)]
// Made by the Kubernetes source only (feature `kube`).
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
pub(crate) enum Written {
    /// Applied, in this many requests (0 for an empty patch).
    Applied(usize),
    /// The object is gone (404): nothing to write to.
    Gone,
}

/// A write the API server refused or that never got an answer.
#[derive(Debug)]
pub(crate) struct WriteError {
    /// The HTTP status, when the server answered.
    pub(crate) code: Option<u16>,
    pub(crate) message: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The cluster an operator runs against.
pub(crate) trait Cluster: Send + Sync {
    /// The client handlers asking for `client` get.
    #[cfg(feature = "kube")]
    fn client(&self) -> &kube::Client;

    /// Where Events about objects go; `None` when this cluster cannot post them (a client
    /// given with [`Operator::client`](crate::Operator::client) alone, with another source).
    fn events(&self) -> Option<Arc<dyn EventSink>>;

    /// Names who reports the Events: the operator's name.
    fn report_as(&self, controller: &str);

    /// With `--shard auto`: the buckets this replica owns, from now on, as its lease keeper keeps
    /// them. A source may keep nothing of the objects of other buckets. Called once, before the
    /// keeper's first round.
    fn shares(&self, owned: Arc<Owned>) {
        let _ = owned;
    }

    /// This replica just took `buckets` over (`--shard auto`): a source that kept nothing of
    /// their objects reads them again, so that they are handled from their recorded progress at
    /// once.
    fn gained(&self, buckets: &[usize]) {
        let _ = buckets;
    }

    /// This replica no longer owns `buckets`: a source may forget their objects.
    fn lost(&self, buckets: &[usize]) {
        let _ = buckets;
    }

    /// Applies `patch` to `object` (read for its kind, API version, namespace and name); `None`
    /// when this cluster does not know where objects of that kind are written: then the patch
    /// cannot be applied and is dropped.
    fn write<'a>(&'a self, object: &'a Value, patch: Patch) -> Option<Writing<'a>>;
}
