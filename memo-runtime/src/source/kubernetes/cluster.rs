//! The cluster a Kubernetes source watches, as handlers reach it: where each watched kind is
//! written (its resource and whether it has the `status` subresource, from discovery), the
//! Events sink, and the client.

use super::events::KubeEvents;
use super::writer::{Target, write};
use crate::api::patch::Patch;
use crate::api::recorder::EventSink;
use crate::contract::cluster::{Cluster, Writing};
use kube::Client;
use kube::api::ApiResource;
use serde_json::Value;
use std::sync::Arc;

/// A watched kind, as the writer addresses it.
pub(super) struct Writable {
    pub(super) resource: ApiResource,
    pub(super) status_subresource: bool,
}

pub(super) struct KubeCluster {
    client: Client,
    kinds: Vec<Writable>,
    events: Arc<KubeEvents>,
    /// One per watch: the buckets gained, whose objects it sends again.
    replays: std::sync::Mutex<Vec<tokio::sync::mpsc::UnboundedSender<Arc<[bool]>>>>,
}

impl KubeCluster {
    /// Must be called on the runtime the operator runs on: it starts the Events' posting task.
    pub(super) fn new(client: Client, kinds: Vec<Writable>) -> Self {
        let instance = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .filter(|name| !name.is_empty());
        KubeCluster {
            events: Arc::new(KubeEvents::start(
                client.clone(),
                crate::shared::DEFAULT_BOT_NAME,
                instance,
            )),
            client,
            kinds,
            replays: std::sync::Mutex::default(),
        }
    }

    /// Where a watch hears of the buckets gained.
    pub(super) fn replays(&self) -> tokio::sync::mpsc::UnboundedReceiver<Arc<[bool]>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.replays
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(sender);
        receiver
    }

    fn kind_of(&self, object: &Value) -> Option<&Writable> {
        let kind = object.get("kind")?.as_str()?;
        let api_version = object.get("apiVersion")?.as_str()?;
        self.kinds
            .iter()
            .find(|writable| writable.resource.kind == kind && writable.resource.api_version == api_version)
    }
}

impl Cluster for KubeCluster {
    fn client(&self) -> &Client {
        &self.client
    }

    fn events(&self) -> Option<Arc<dyn EventSink>> {
        Some(Arc::clone(&self.events) as Arc<dyn EventSink>)
    }

    fn report_as(&self, controller: &str) {
        self.events.report_as(controller);
    }

    fn gained(&self, buckets: &[usize]) {
        let mut gained = vec![false; crate::api::shard::BUCKETS];
        for &bucket in buckets {
            if let Some(slot) = gained.get_mut(bucket) {
                *slot = true;
            }
        }
        let gained: Arc<[bool]> = gained.into();
        let mut replays = self.replays.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        replays.retain(|replay| replay.send(Arc::clone(&gained)).is_ok());
    }

    fn write<'a>(&'a self, object: &'a Value, patch: Patch) -> Option<Writing<'a>> {
        let writable = self.kind_of(object)?;
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata.get("namespace").and_then(Value::as_str);
        Some(Box::pin(async move {
            let target = Target {
                resource: &writable.resource,
                status_subresource: writable.status_subresource,
                namespace,
                name,
            };
            write(&self.client, &target, patch).await
        }))
    }
}

/// The cluster of a client given with `Operator::client`, beside a source that is not a
/// cluster: handlers get the client; patches and Events have nowhere to go.
pub(crate) struct ClientOnly(pub(crate) Client);

impl Cluster for ClientOnly {
    fn client(&self) -> &Client {
        &self.0
    }

    fn events(&self) -> Option<Arc<dyn EventSink>> {
        None
    }

    fn report_as(&self, _: &str) {}

    fn write<'a>(&'a self, _: &'a Value, _: Patch) -> Option<Writing<'a>> {
        None
    }
}
