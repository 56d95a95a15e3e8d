//! `--shard auto` against a cluster without a shared store: membership and bucket leases as
//! `coordination.k8s.io/v1` Lease objects in one namespace, each write conditional on the
//! `resourceVersion` read (a `409 Conflict` means another replica wrote first).

use crate::api::error::{Error, Result};
use crate::store::StoreFuture;
use crate::store::leaser::Leaser;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// The label every Lease of one group of replicas carries.
const GROUP_LABEL: &str = "memo.dev/shard-group";

pub(crate) struct KubeLeaser {
    api: Api<Lease>,
    namespace: String,
    /// The group's name as Lease names take it: `memo-{bot}`, lower case.
    group: String,
    lease: Duration,
    /// The last version of each Lease this replica read or wrote: a renewal writes on it.
    known: Mutex<HashMap<String, Lease>>,
}

impl KubeLeaser {
    pub(crate) fn new(client: Client, namespace: &str, bot: &str, lease: Duration) -> Self {
        let cleaned: String = bot
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        KubeLeaser {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            group: format!("memo-{}", cleaned.trim_matches('-')),
            lease: lease.max(Duration::from_secs(1)),
            known: Mutex::default(),
        }
    }

    fn member_name(&self, me: &str) -> String {
        format!("{}-member-{me}", self.group)
    }

    fn bucket_name(&self, bucket: usize) -> String {
        format!("{}-bucket-{bucket}", self.group)
    }

    fn remember(&self, lease: Lease) {
        if let Some(name) = lease.metadata.name.clone() {
            self.known
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(name, lease);
        }
    }

    fn known(&self, name: &str) -> Option<Lease> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
    }

    /// A Lease of the group named `name`, held by `holder` from now.
    fn fresh(&self, name: &str, holder: Option<&str>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(GROUP_LABEL.to_owned(), self.group.clone())])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(i32::try_from(self.lease.as_secs().max(1)).unwrap_or(i32::MAX)),
                acquire_time: holder.map(|_| now()),
                renew_time: holder.map(|_| now()),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Creates the Lease, or replaces it on the version read: `Ok(false)` if another replica
    /// wrote first.
    async fn write(&self, lease: Lease, existed: bool) -> Result<bool> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let written = if existed {
            self.api.replace(&name, &PostParams::default(), &lease).await
        } else {
            self.api.create(&PostParams::default(), &lease).await
        };
        match written {
            Ok(written) => {
                self.remember(written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                self.known
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&name);
                Ok(false)
            }
            Err(err) => Err(failed(&err)),
        }
    }

    /// The Lease as the API server has it now.
    async fn read(&self, name: &str) -> Result<Option<Lease>> {
        let lease = self.api.get_opt(name).await.map_err(|err| failed(&err))?;
        if let Some(lease) = &lease {
            self.remember(lease.clone());
        }
        Ok(lease)
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn failed(err: &kube::Error) -> Error {
    Error::Kubernetes(format!("Lease: {err}"))
}

/// The holder of `lease` if it is held at `now` (Unix milliseconds).
fn holder(lease: &Lease, now: u64) -> Option<&str> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|holder| !holder.is_empty())?;
    let renewed = spec.renew_time.as_ref()?.0.as_millisecond();
    let until = renewed.saturating_add(i64::from(spec.lease_duration_seconds.unwrap_or(0)) * 1000);
    (until > i64::try_from(now).unwrap_or(i64::MAX)).then_some(holder)
}

fn unix_millis() -> u64 {
    u64::try_from(k8s_openapi::jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}

impl Leaser for KubeLeaser {
    fn describe(&self) -> String {
        format!("Leases `{}-*` in namespace {}", self.group, self.namespace)
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn heartbeat<'a>(&'a self, me: &'a str, _until: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = self.member_name(me);
            for _ in 0..2 {
                let existing = match self.known(&name) {
                    Some(lease) => Some(lease),
                    None => self.read(&name).await?,
                };
                let existed = existing.is_some();
                let mut lease = self.fresh(&name, Some(me));
                if let Some(existing) = existing {
                    lease.metadata.resource_version = existing.metadata.resource_version;
                }
                if self.write(lease, existed).await? {
                    return Ok(());
                }
            }
            Err(Error::Kubernetes(format!("Lease {name}: conflicting writes")))
        })
    }

    fn members(&self, now: u64) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let listed = self
                .api
                .list(&ListParams::default().labels(&format!("{GROUP_LABEL}={}", self.group)))
                .await
                .map_err(|err| failed(&err))?;
            let prefix = format!("{}-member-", self.group);
            let mut members: Vec<String> = listed
                .items
                .iter()
                .filter(|lease| {
                    lease
                        .metadata
                        .name
                        .as_deref()
                        .is_some_and(|name| name.starts_with(&prefix))
                })
                .filter_map(|lease| holder(lease, now).map(str::to_owned))
                .collect();
            members.sort();
            members.dedup();
            Ok(members)
        })
    }

    /// The fencing token is the Lease's `leaseTransitions`, counted up by every new holder (the
    /// way client-go's leader election counts them).
    fn acquire<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let name = self.bucket_name(bucket);
            let Some(existing) = self.read(&name).await? else {
                return Ok(self.write(self.fresh(&name, Some(me)), false).await?.then_some(0));
            };
            let transitions = existing
                .spec
                .as_ref()
                .and_then(|spec| spec.lease_transitions)
                .unwrap_or(0);
            let token = |transitions: i32| u64::try_from(transitions).unwrap_or(0);
            match holder(&existing, unix_millis()) {
                Some(holder) => Ok((holder == me).then(|| token(transitions))),
                None => {
                    let mut lease = self.fresh(&name, Some(me));
                    lease.metadata.resource_version = existing.metadata.resource_version.clone();
                    let next = transitions.saturating_add(1);
                    if let Some(spec) = lease.spec.as_mut() {
                        spec.lease_transitions = Some(next);
                    }
                    Ok(self.write(lease, true).await?.then(|| token(next)))
                }
            }
        })
    }

    fn renew<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let name = self.bucket_name(bucket);
            let Some(mut lease) = self.known(&name) else {
                return Ok(false);
            };
            let mine = lease.spec.as_ref().and_then(|spec| spec.holder_identity.as_deref()) == Some(me);
            if !mine {
                return Ok(false);
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(now());
            }
            self.write(lease, true).await
        })
    }

    fn release<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = self.bucket_name(bucket);
            if let Some(mut lease) = self.known(&name)
                && lease.spec.as_ref().and_then(|spec| spec.holder_identity.as_deref()) == Some(me)
            {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.renew_time = None;
                }
                self.write(lease, true).await?;
            }
            Ok(())
        })
    }

    fn leave<'a>(&'a self, me: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = self.member_name(me);
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                Err(err) => Err(failed(&err)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kubernetes::fake_api::FakeApi;

    fn leaser(fake: &FakeApi) -> KubeLeaser {
        KubeLeaser::new(fake.client(), "operators", "Message Counter", Duration::from_secs(2))
    }

    fn fake() -> FakeApi {
        let fake = FakeApi::new();
        fake.add_kind("coordination.k8s.io", "v1", "Lease", "leases", true);
        fake
    }

    #[tokio::test]
    async fn one_holder_per_bucket_and_a_dead_holders_lease_is_taken_over() {
        let fake = fake();
        let (a, b) = (leaser(&fake), leaser(&fake));
        assert_eq!(a.acquire(7, "a").await.unwrap(), Some(0));
        assert_eq!(b.acquire(7, "b").await.unwrap(), None, "held by a");
        assert!(a.renew(7, "a").await.unwrap());
        assert!(!b.renew(7, "b").await.unwrap());
        let stored = fake
            .object("leases", Some("operators"), "memo-message-counter-bucket-7")
            .unwrap();
        assert_eq!(stored["spec"]["holderIdentity"], "a");
        // b's stale copy cannot overwrite a's renewal: the write is conditional (409).
        a.release(7, "a").await.unwrap();
        assert_eq!(
            b.acquire(7, "b").await.unwrap(),
            Some(1),
            "released: free, a larger token"
        );
        assert!(!a.renew(7, "a").await.unwrap(), "no longer a's");
        // A holder that stopped renewing: once its lease ran out, another takes it.
        fake.merge(
            "leases",
            Some("operators"),
            "memo-message-counter-bucket-7",
            serde_json::json!({"spec": {"renewTime": "2020-01-01T00:00:00.000000Z"}}),
        );
        assert_eq!(a.acquire(7, "a").await.unwrap(), Some(2), "b's lease expired");
        assert_eq!(
            fake.object("leases", Some("operators"), "memo-message-counter-bucket-7")
                .unwrap()["spec"]["leaseTransitions"],
            2
        );
    }

    #[tokio::test]
    async fn members_are_the_live_member_leases_of_the_group() {
        let fake = fake();
        let (a, b) = (leaser(&fake), leaser(&fake));
        a.heartbeat("a", 0).await.unwrap();
        b.heartbeat("b", 0).await.unwrap();
        a.heartbeat("a", 0).await.unwrap();
        assert_eq!(a.members(unix_millis()).await.unwrap(), ["a", "b"]);
        b.leave("b").await.unwrap();
        assert_eq!(a.members(unix_millis()).await.unwrap(), ["a"]);
        assert!(
            a.members(unix_millis() + 10_000).await.unwrap().is_empty(),
            "not renewed: gone"
        );
    }
}
