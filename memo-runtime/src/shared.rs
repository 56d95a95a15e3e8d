//! Shared memory between workers (botogram's `shared`): a key-value store whose values cross
//! worker boundaries by serialization, filled lazily by preparers, isolated per component, with
//! named locks for read-modify-write.

use crate::registry::Preparer;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// A handle to one shared memory: the bot's, or one component's.
///
/// Handlers ask for it with a `shared: &Shared` parameter (in an `async fn`). Every worker sees the
/// same memory. Values are stored serialized (as JSON), so only what serde can serialize can be
/// stored — exactly as botogram stores only what pickle can serialize — and the same handler code
/// keeps working when the store moves out of process. Cloning the handle is cheap and shares the
/// memory.
///
/// ```
/// use memo_runtime::prelude::*;
///
/// #[prepare_memory]
/// async fn prepare(shared: &Shared) -> memo_runtime::Result<()> {
///     shared.set("messages", 0u64).await
/// }
///
/// #[handler(event = "KopfExample")]
/// async fn increment(shared: &Shared) -> memo_runtime::Result<()> {
///     shared.update("messages", |n: &mut u64| *n += 1).await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct Shared {
    space: Arc<Space>,
}

struct Space {
    component: Option<String>,
    preparers: Vec<&'static Preparer>,
    /// Values, spread over shards by key so that workers on different keys do not contend.
    shards: Box<[Shard]>,
    hasher: ahash::RandomState,
    locks: Mutex<HashMap<Arc<str>, Arc<tokio::sync::Mutex<()>>, ahash::RandomState>>,
    prepared: tokio::sync::OnceCell<()>,
}

/// Holds a named lock of a [`Shared`] memory until dropped or [`released`](LockGuard::release).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    name: Arc<str>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Releases the lock now (dropping the guard does the same).
    pub fn release(self) {}
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("name", &self.name).finish()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.sorted_keys();
        f.debug_struct("Shared")
            .field("component", &self.space.component)
            .field("keys", &keys)
            .finish()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

impl Shared {
    /// A new, empty, standalone shared memory (the bot level). Operators make their own; this is
    /// for tests and for code that uses the store directly.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// shared.set("greeting", "hello").await?;
    /// assert_eq!(shared.get::<String>("greeting").await?, Some("hello".to_owned()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        Shared::for_component(None, Vec::new())
    }

    fn for_component(component: Option<&str>, preparers: Vec<&'static Preparer>) -> Self {
        Shared {
            space: Arc::new(Space {
                component: component.map(str::to_owned),
                preparers,
                shards: (0..SHARDS).map(|_| Shard::default()).collect(),
                hasher: ahash::RandomState::new(),
                locks: Mutex::default(),
                prepared: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The component this memory belongs to, or `None` for the bot-level memory.
    pub fn component(&self) -> Option<&str> {
        self.space.component.as_deref()
    }

    /// The shard holding `key`, locked. A panic while holding it cannot leave a half-written
    /// value (every write stores a fully built value), so a poisoned lock is still good.
    fn shard(&self, key: &str) -> MutexGuard<'_, Values> {
        let index = self.space.hasher.hash_one(key) as usize % SHARDS;
        self.space.shards[index]
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sorted_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .space
            .shards
            .iter()
            .flat_map(|shard| {
                let values = shard.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                values.keys().cloned().collect::<Vec<_>>()
            })
            .collect();
        keys.sort();
        keys
    }

    /// A copy of the value under `key`, or `None` if there is none.
    ///
    /// Fails if the stored value is not a `T`, naming the key and the type.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let values = self.shard(key);
        match values.get(key) {
            Some(value) => decode(key, value).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// Fails (storing nothing) if the value cannot be serialized.
    pub async fn set(&self, key: &str, value: impl Serialize) -> Result<()> {
        let value = encode(key, &value)?;
        store(&mut self.shard(key), key, value);
        Ok(())
    }

    /// Atomically reads, modifies and writes the value under `key`: no concurrent `update` or
    /// `set` from any worker can slip in between. A missing key starts from `T::default()`.
    /// Returns what `f` returns.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let after = shared.update("messages", |n: &mut u64| { *n += 1; *n }).await?;
    /// assert_eq!(after, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update<T, R>(&self, key: &str, mut f: impl FnMut(&mut T) -> R) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let mut values = self.shard(key);
        let mut current: T = match values.get(key) {
            Some(value) => decode(key, value)?,
            None => T::default(),
        };
        let result = f(&mut current);
        store(&mut values, key, encode(key, &current)?);
        Ok(result)
    }

    /// Removes `key`; returns whether it was there.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        Ok(self.shard(key).remove(key).is_some())
    }

    /// Whether a value is stored under `key`.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.shard(key).contains_key(key))
    }

    /// Every key, sorted.
    pub async fn keys(&self) -> Result<Vec<String>> {
        Ok(self.sorted_keys())
    }

    /// Takes the named lock of this memory, waiting while another holder has it. Lock names are
    /// per bot or component: a component's `"counter"` lock is not the bot's.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let guard = shared.lock("update-messages").await?;
    /// let n: u64 = shared.get("messages").await?.unwrap_or(0);
    /// shared.set("messages", n + 1).await?;
    /// guard.release();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lock(&self, name: &str) -> Result<LockGuard> {
        let (name, lock) = {
            let mut locks = self.space.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match locks.get_key_value(name) {
                Some((name, lock)) => (Arc::clone(name), Arc::clone(lock)),
                None => {
                    let name: Arc<str> = name.into();
                    let lock = Arc::default();
                    locks.insert(Arc::clone(&name), Arc::clone(&lock));
                    (name, lock)
                }
            }
        };
        Ok(LockGuard {
            name,
            _guard: lock.lock_owned().await,
        })
    }

    /// Runs this memory's preparers unless they have run already; concurrent callers wait for
    /// the one that runs them. A failure leaves the memory unprepared, so the next call tries
    /// again, and says which preparer failed, where, and why.
    pub(crate) async fn ensure_prepared(&self) -> Result<(), String> {
        if self.space.prepared.initialized() {
            return Ok(());
        }
        self.space
            .prepared
            .get_or_try_init(|| async {
                for &preparer in &self.space.preparers {
                    crate::invoke::call_preparer(preparer, self).await.map_err(|err| {
                        format!("preparer `{}` at {} failed: {err}", preparer.id, preparer.location())
                    })?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
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

/// Replaces the value in place, allocating the key only when it is new.
fn store(values: &mut Values, key: &str, value: Value) {
    match values.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            values.insert(key.to_owned(), value);
        }
    }
}

fn decode<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|err| Error::SharedType {
        key: key.to_owned(),
        type_name: std::any::type_name::<T>(),
        reason: err.to_string(),
    })
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|err| Error::SharedType {
        key: key.to_owned(),
        type_name: std::any::type_name::<T>(),
        reason: err.to_string(),
    })
}

/// Every shared memory of one operator: the bot's and each component's, made on first use, each
/// with the preparers registered for it.
#[derive(Clone)]
pub(crate) struct SharedMemory {
    preparers: Arc<[&'static Preparer]>,
    spaces: Arc<Mutex<HashMap<Option<String>, Shared>>>,
}

impl SharedMemory {
    pub(crate) fn new(preparers: Vec<&'static Preparer>) -> Self {
        SharedMemory {
            preparers: preparers.into(),
            spaces: Arc::default(),
        }
    }

    pub(crate) fn space(&self, component: Option<&str>) -> Shared {
        let mut spaces = self.spaces.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        spaces
            .entry(component.map(str::to_owned))
            .or_insert_with(|| {
                let preparers = self
                    .preparers
                    .iter()
                    .copied()
                    .filter(|p| p.component == component)
                    .collect();
                Shared::for_component(component, preparers)
            })
            .clone()
    }
}
