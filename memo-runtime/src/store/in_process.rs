//! The built-in store: memories in this process's memory, gone when it exits.

use super::local_locks::{LocalGuard, LocalLocks};
use super::{Lease, MemoryId, Preparation, Store, StoreFuture, Version, Versioned, Written};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Shared memory in this process: what every [`Operator`](crate::Operator) uses unless given
/// another store. Fast (a sharded map of JSON values), but private to the process and lost when it
/// exits. Cloning it shares the memories.
///
/// Its locks cannot be lost: a guard holds its lock until dropped. (Leases taken by calling the
/// [`Store`] methods directly are kept apart from the locks of [`Shared::lock`](crate::Shared::lock).)
///
/// ```
/// use memo_runtime::prelude::*;
/// use memo_runtime::store::InProcessStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memo_runtime::Result<()> {
/// let store = InProcessStore::new();
/// let a = Operator::new().name("bot").store(store.clone());
/// let b = Operator::new().name("bot").store(store);
/// a.shared().set("greeting", "hello").await?;
/// assert_eq!(b.shared().get::<String>("greeting").await?.as_deref(), Some("hello"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InProcessStore {
    spaces: Arc<Mutex<HashMap<MemoryId, Arc<InProcessSpace>>>>,
}

impl std::fmt::Debug for InProcessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessStore")
    }
}

impl InProcessStore {
    /// A new store with no memories.
    pub fn new() -> Self {
        InProcessStore::default()
    }

    /// The memory `memory`, made on first use.
    pub(crate) fn space(&self, memory: &MemoryId) -> Arc<InProcessSpace> {
        let mut spaces = self.spaces.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let space = spaces
            .entry(memory.clone())
            .or_insert_with(|| Arc::new(InProcessSpace::new(memory.clone())));
        Arc::clone(space)
    }
}

/// Shards per memory: enough that a few workers on different keys rarely meet.
const SHARDS: usize = 16;

type Values = HashMap<String, Value, ahash::RandomState>;

/// One shard, alone on its cache lines so that shards used by different cores do not slow each
/// other down.
#[derive(Default)]
#[repr(align(128))]
struct Shard(Mutex<Values>);

/// One memory of the in-process store.
pub(crate) struct InProcessSpace {
    memory: MemoryId,
    /// Values, spread over shards by key so that workers on different keys do not contend.
    shards: Box<[Shard]>,
    hasher: ahash::RandomState,
    /// The locks taken through `Shared::lock`.
    locks: LocalLocks<()>,
    /// One counter for every lock name: strictly increasing per name too, and it needs no entry
    /// per name.
    fencing: AtomicU64,
    /// Leases taken through the `Store` trait (by a caller other than `Shared`), by lock name.
    leases: Mutex<HashMap<String, (Arc<str>, Instant)>>,
    prepared: AtomicBool,
    preparing: Mutex<Option<(Arc<str>, Instant)>>,
}

impl InProcessSpace {
    fn new(memory: MemoryId) -> Self {
        InProcessSpace {
            memory,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: ahash::RandomState::new(),
            locks: LocalLocks::default(),
            fencing: AtomicU64::new(0),
            leases: Mutex::default(),
            prepared: AtomicBool::new(false),
            preparing: Mutex::default(),
        }
    }
}

/// A lock of an in-process memory, held.
pub(crate) struct InProcessLock {
    pub(crate) fencing_token: u64,
    guard: LocalGuard<()>,
}

impl InProcessLock {
    pub(crate) fn name(&self) -> &Arc<str> {
        self.guard.name()
    }
}

fn unpoisoned<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every write stores a fully built value: a panic while holding a lock cannot leave a
    // half-written one, so a poisoned lock is still good.
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InProcessSpace {
    pub(crate) fn memory(&self) -> &MemoryId {
        &self.memory
    }

    /// The shard holding `key`, locked.
    pub(crate) fn shard(&self, key: &str) -> MutexGuard<'_, Values> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        unpoisoned(&self.shards[index].0)
    }

    /// Replaces the value in place, allocating the key only when it is new.
    pub(crate) fn store(values: &mut Values, key: &str, value: Value) {
        match values.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                values.insert(key.to_owned(), value);
            }
        }
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        self.shards
            .iter()
            .flat_map(|shard| unpoisoned(&shard.0).keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            unpoisoned(&shard.0).clear();
        }
        unpoisoned(&self.leases).clear();
        self.prepared.store(false, Ordering::SeqCst);
    }

    pub(crate) async fn lock(&self, name: &str) -> InProcessLock {
        let guard = self.locks.lock(name).await;
        InProcessLock {
            fencing_token: self.fencing.fetch_add(1, Ordering::SeqCst) + 1,
            guard,
        }
    }

    pub(crate) fn is_prepared(&self) -> bool {
        self.prepared.load(Ordering::Acquire)
    }

    fn versioned(value: &Value) -> Versioned {
        Versioned {
            value: value.clone(),
            version: version_of(value),
        }
    }

    fn holds(&self, name: &str, holder: &str) -> bool {
        let mut leases = unpoisoned(&self.leases);
        match leases.get(name) {
            Some((owner, until)) if *until > Instant::now() => &**owner == holder,
            Some(_) => {
                leases.remove(name);
                false
            }
            None => false,
        }
    }
}

/// The version of an in-process value is its JSON text: only the trait's callers need one, and
/// they are off the hot path.
fn version_of(value: &Value) -> Version {
    Version::new(value.to_string())
}

/// A lease that has not run out, if any.
fn live(slot: &Option<(Arc<str>, Instant)>) -> Option<&Arc<str>> {
    slot.as_ref()
        .filter(|(_, until)| *until > Instant::now())
        .map(|(owner, _)| owner)
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Store for InProcessStore {
    fn describe(&self) -> String {
        "in-process store".to_owned()
    }

    fn get<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        let space = self.space(memory);
        let found = space.shard(key).get(key).map(InProcessSpace::versioned);
        ready(found)
    }

    fn set<'a>(&'a self, memory: &'a MemoryId, key: &'a str, value: Value) -> StoreFuture<'a, ()> {
        let space = self.space(memory);
        InProcessSpace::store(&mut space.shard(key), key, value);
        ready(())
    }

    fn compare_and_set<'a>(
        &'a self,
        memory: &'a MemoryId,
        key: &'a str,
        expected: Option<&'a Version>,
        value: Value,
        fence: Option<(&'a str, &'a str)>,
    ) -> StoreFuture<'a, Written> {
        let space = self.space(memory);
        if let Some((lock, holder)) = fence
            && !space.holds(lock, holder)
        {
            return ready(Written::LeaseLost);
        }
        let mut values = space.shard(key);
        let current = values.get(key).map(InProcessSpace::versioned);
        if current.as_ref().map(|c| &c.version) != expected {
            return ready(Written::Changed(current));
        }
        let version = version_of(&value);
        InProcessSpace::store(&mut values, key, value);
        ready(Written::Done(version))
    }

    fn set_fenced<'a>(
        &'a self,
        memory: &'a MemoryId,
        lock: &'a str,
        holder: &'a str,
        key: &'a str,
        value: Value,
    ) -> StoreFuture<'a, Written> {
        let space = self.space(memory);
        if !space.holds(lock, holder) {
            return ready(Written::LeaseLost);
        }
        let version = version_of(&value);
        InProcessSpace::store(&mut space.shard(key), key, value);
        ready(Written::Done(version))
    }

    fn remove<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool> {
        ready(self.space(memory).shard(key).remove(key).is_some())
    }

    fn contains<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool> {
        ready(self.space(memory).shard(key).contains_key(key))
    }

    fn keys<'a>(&'a self, memory: &'a MemoryId) -> StoreFuture<'a, Vec<String>> {
        ready(self.space(memory).keys())
    }

    fn clear<'a>(&'a self, memory: &'a MemoryId) -> StoreFuture<'a, ()> {
        self.space(memory).clear();
        ready(())
    }

    fn try_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, Option<Lease>> {
        let space = self.space(memory);
        let mut leases = unpoisoned(&space.leases);
        let now = Instant::now();
        if leases.get(name).is_some_and(|(_, until)| *until > now) {
            return ready(None);
        }
        leases.insert(name.to_owned(), (holder.into(), now + self.lease()));
        let fencing_token = space.fencing.fetch_add(1, Ordering::SeqCst) + 1;
        ready(Some(Lease { fencing_token }))
    }

    fn renew_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        let space = self.space(memory);
        let mut leases = unpoisoned(&space.leases);
        let renewed = match leases.get_mut(name) {
            Some((owner, until)) if &**owner == holder && *until > Instant::now() => {
                *until = Instant::now() + self.lease();
                true
            }
            _ => false,
        };
        ready(renewed)
    }

    fn unlock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        let held = self.space(memory).holds(name, holder);
        if held {
            unpoisoned(&self.space(memory).leases).remove(name);
        }
        ready(held)
    }

    fn begin_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str) -> StoreFuture<'a, Preparation> {
        let space = self.space(memory);
        let mut preparing = unpoisoned(&space.preparing);
        let state = if space.is_prepared() {
            Preparation::Prepared
        } else if live(&preparing).is_some() {
            Preparation::Busy
        } else {
            *preparing = Some((holder.into(), Instant::now() + self.lease()));
            Preparation::Won
        };
        ready(state)
    }

    fn renew_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str) -> StoreFuture<'a, bool> {
        let space = self.space(memory);
        let mut preparing = unpoisoned(&space.preparing);
        let renewed = live(&preparing).is_some_and(|owner| &**owner == holder);
        if renewed {
            *preparing = Some((holder.into(), Instant::now() + self.lease()));
        }
        ready(renewed)
    }

    fn finish_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str, prepared: bool) -> StoreFuture<'a, ()> {
        let space = self.space(memory);
        let mut preparing = unpoisoned(&space.preparing);
        if prepared {
            space.prepared.store(true, Ordering::Release);
        }
        if preparing.as_ref().is_some_and(|(owner, _)| &**owner == holder) {
            *preparing = None;
        }
        ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::Result;

    #[tokio::test]
    async fn trait_level_leases_and_fenced_writes() -> Result<()> {
        let store = InProcessStore::new();
        let memory = MemoryId::new("bot", None);
        let first = store.try_lock(&memory, "l", "a").await?.map(|l| l.fencing_token);
        assert_eq!(first, Some(1));
        assert_eq!(store.try_lock(&memory, "l", "b").await?, None);
        let fenced = store.set_fenced(&memory, "l", "b", "k", Value::from(1)).await?;
        assert_eq!(fenced, Written::LeaseLost);
        assert!(!store.contains(&memory, "k").await?);
        let holder = store.set_fenced(&memory, "l", "a", "k", Value::from(2)).await?;
        assert!(matches!(holder, Written::Done(_)), "{holder:?}");
        assert!(store.unlock(&memory, "l", "a").await?);
        let second = store.try_lock(&memory, "l", "b").await?.map(|l| l.fencing_token);
        assert_eq!(second, Some(2));
        Ok(())
    }

    #[tokio::test]
    async fn compare_and_set_sees_changes() -> Result<()> {
        let store = InProcessStore::new();
        let memory = MemoryId::new("bot", None);
        let first = store.compare_and_set(&memory, "k", None, Value::from(1), None).await?;
        assert!(matches!(first, Written::Done(_)), "{first:?}");
        let read = store.get(&memory, "k").await?.expect("written");
        store.set(&memory, "k", Value::from(5)).await?;
        let again = store
            .compare_and_set(&memory, "k", Some(&read.version), Value::from(2), None)
            .await?;
        assert!(
            matches!(again, Written::Changed(Some(ref now)) if now.value == 5),
            "{again:?}"
        );
        Ok(())
    }
}
