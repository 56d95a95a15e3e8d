//! Leases on the buckets of `--shard auto`, and the membership of the replicas that share them:
//! the [`Leaser`] trait the lease keeper works with, and [`StoreLeaser`] over a [`Store`]'s
//! fenced locks (Redis, for replicas in several processes). The Kubernetes source has another,
//! over `coordination.k8s.io/v1` Lease objects.

use crate::store::{MemoryId, Store, StoreFuture};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Where replicas meet and hold bucket leases.
pub(crate) trait Leaser: Send + Sync {
    /// How the logs name it.
    fn describe(&self) -> String;

    /// How long a lease lasts unless renewed.
    fn lease(&self) -> Duration;

    /// Records that `me` is alive until `until` (Unix milliseconds).
    fn heartbeat<'a>(&'a self, me: &'a str, until: u64) -> StoreFuture<'a, ()>;

    /// The members alive at `now` (Unix milliseconds), sorted; records of dead ones may go.
    fn members(&self, now: u64) -> StoreFuture<'_, Vec<String>>;

    /// Takes `bucket`'s lease for `me` if it is free (or already `me`'s): its fencing token,
    /// larger for every later holder, or `None` if another holds it.
    fn acquire<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, Option<u64>>;

    /// Extends `me`'s lease of `bucket`; `false` if it is no longer `me`'s.
    fn renew<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, bool>;

    /// Gives `me`'s lease of `bucket` up.
    fn release<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, ()>;

    /// Removes `me`'s membership record.
    fn leave<'a>(&'a self, me: &'a str) -> StoreFuture<'a, ()>;
}

/// Bucket leases as a store's fenced locks, membership as its values, in the component
/// `memo.shard` of the bot's memory.
pub(crate) struct StoreLeaser {
    store: Arc<dyn Store>,
    memory: MemoryId,
}

impl StoreLeaser {
    pub(crate) fn new(store: Arc<dyn Store>, bot: &str) -> Self {
        StoreLeaser {
            store,
            memory: MemoryId::new(bot, Some("memo.shard")),
        }
    }
}

fn member_key(me: &str) -> String {
    format!("member:{me}")
}

fn bucket_key(bucket: usize) -> String {
    format!("bucket-{bucket}")
}

impl Leaser for StoreLeaser {
    fn describe(&self) -> String {
        format!("{} ({})", self.store.describe(), self.memory)
    }

    fn lease(&self) -> Duration {
        self.store.lease()
    }

    fn heartbeat<'a>(&'a self, me: &'a str, until: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .set(&self.memory, &member_key(me), json!({ "until": until }))
                .await
        })
    }

    fn members(&self, now: u64) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut members = Vec::new();
            for key in self.store.keys(&self.memory).await? {
                let Some(member) = key.strip_prefix("member:") else {
                    continue;
                };
                let until = self
                    .store
                    .get(&self.memory, &key)
                    .await?
                    .and_then(|record| record.value.get("until").and_then(serde_json::Value::as_u64));
                match until {
                    Some(until) if until > now => members.push(member.to_owned()),
                    _ => {
                        let _ = self.store.remove(&self.memory, &key).await;
                    }
                }
            }
            members.sort();
            Ok(members)
        })
    }

    fn acquire<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            Ok(self
                .store
                .try_lock(&self.memory, &bucket_key(bucket), me)
                .await?
                .map(|lease| lease.fencing_token))
        })
    }

    fn renew<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.store.renew_lock(&self.memory, &bucket_key(bucket), me).await })
    }

    fn release<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.store.unlock(&self.memory, &bucket_key(bucket), me).await.map(drop) })
    }

    fn leave<'a>(&'a self, me: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.store.remove(&self.memory, &member_key(me)).await.map(drop) })
    }
}
