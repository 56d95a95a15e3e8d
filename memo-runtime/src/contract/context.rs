//! What a generated wrapper takes its handler's arguments from.

use crate::api::event::Event;
use crate::api::labels::{Annotations, Labels};
use crate::api::logger::Logger;
use crate::api::patch::Patch;
use crate::api::recorder::Recorder;
use crate::api::resource::Resource;
use crate::api::shard::Held;
use crate::contract::cluster::Cluster;
use crate::contract::outcome::InjectError;
use crate::contract::seen::Seen;
use crate::observe::in_flight::Watch;
use crate::shared::Shared;
use serde_json::Value;
use std::any::Any;

/// Everything a wrapper may take its handler's arguments from.
pub struct Context<'a> {
    /// The memo: the resource's, or the operator's for startup and cleanup handlers.
    pub memo: &'a mut (dyn Any + Send + Sync),
    /// Everything else, shared.
    pub env: &'a Env<'a>,
    /// The handler's shared memory, if it asks for one.
    pub shared: Option<&'a Shared>,
    /// What an `update` handler sees changed; `None` for every other handler.
    pub seen: Option<&'a Seen<'a>>,
    /// The object's labels, for a handler that asks for them. Made per call, not kept with the
    /// event: a handler takes a reference to the view, and a cell shared by the event's handlers
    /// would make every lifetime here invariant.
    pub labels: Option<&'a Labels<'a>>,
    /// The object's annotations, likewise.
    pub annotations: Option<&'a Annotations<'a>>,
    /// The handler's own patch for this call, if it asks for one: kept only if it succeeds.
    pub patch: Option<&'a mut Patch>,
    /// Events about the object, for a handler that asks for them; made per call, as `labels`.
    pub recorder: Option<&'a Recorder>,
    /// How many times this handler was retried for this event (0 on its first call).
    pub retry: u32,
}

/// The read-only part of a [`Context`].
pub struct Env<'a> {
    pub(crate) body: Option<&'a Value>,
    pub(crate) event: Option<&'a Event>,
    /// Who the resource is, read once when its first event was admitted.
    pub(crate) resource: Option<Resource<'a>>,
    pub(crate) logger: &'a once_cell::race::OnceBox<Logger>,
    /// Where the running handler is marked, for a stop that has to abandon it.
    pub(crate) watch: &'a Watch,
    /// The cluster the operator runs against, if any.
    pub(crate) cluster: Option<&'a dyn Cluster>,
    /// The lease held on the resource's bucket, with `--shard auto`.
    pub(crate) held: Option<Held<'a>>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(
        body: Option<&'a Value>,
        event: Option<&'a Event>,
        resource: Option<Resource<'a>>,
        logger: &'a once_cell::race::OnceBox<Logger>,
        watch: &'a Watch,
    ) -> Self {
        Env {
            body,
            event,
            resource,
            logger,
            watch,
            cluster: None,
            held: None,
        }
    }

    /// The same, with the lease held on the resource's bucket.
    pub(crate) fn fenced(mut self, held: Option<Held<'a>>) -> Self {
        self.held = held;
        self
    }

    /// The same, with the cluster the operator runs against.
    pub(crate) fn on(mut self, cluster: Option<&'a dyn Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    pub(crate) fn body(&self, what: &'static str) -> Result<&'a Value, InjectError> {
        self.body.ok_or(InjectError(what))
    }

    pub(crate) fn resource(&self, what: &'static str) -> Result<Resource<'a>, InjectError> {
        self.resource.ok_or(InjectError(what))
    }
}
