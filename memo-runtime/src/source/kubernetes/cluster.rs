//! The cluster a Kubernetes source watches, as handlers reach it: where each watched kind is
//! written (its resource and whether it has the `status` subresource, from discovery), the
//! Events sink, and the client.

use super::events::KubeEvents;
use super::sharing::{Moved, Share, Shares};
use super::writer::{Target, write};
use crate::api::patch::Patch;
use crate::api::recorder::EventSink;
use crate::api::shard::Owned;
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
    /// What the watches hear of this replica's share of the buckets.
    shares: Shares,
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
            shares: Shares::default(),
        }
    }

    /// Where a watch hears of this replica's share of the buckets.
    pub(super) fn share(&self) -> Share {
        self.shares.watch()
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

    fn shares(&self, owned: Arc<Owned>) {
        self.shares.set(owned);
    }

    fn gained(&self, buckets: &[usize]) {
        if !buckets.is_empty() {
            self.shares.moved(Moved::Gained);
        }
    }

    fn lost(&self, buckets: &[usize]) {
        if !buckets.is_empty() {
            self.shares.moved(Moved::Lost);
        }
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
