//! Shared memory between workers (botogram's `shared`): a key-value store whose values cross
//! worker boundaries by serialization, isolated per bot and per component, with named lease locks
//! for read-modify-write. Where the values live is the [`store`](crate::store)'s business.

mod codec;
mod finite;
mod gather;
mod lock;
pub(crate) mod preparers;

pub use lock::LockGuard;

use codec::{decode, encode};

use crate::api::error::{Error, Result};
use crate::observe::metrics::{Metrics, Operation, StoreMetrics};
use crate::shared::preparers::Prepare;
use crate::store::backoff::Backoff;
use crate::store::in_process::InProcessSpace;
use crate::store::local_locks::{LocalGuard, LocalLocks};
use crate::store::{InProcessStore, MemoryId, Store, StoreRef, Versioned, Written};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A handle to one shared memory: the bot's, or one component's.
///
/// Handlers ask for it with a `shared: &Shared` parameter (in an `async fn`). Every worker sees the
/// same memory — and, with a [`RedisStore`](crate::store), every process of the bot. Values are
/// stored serialized (as JSON), so only what serde can serialize can be stored — exactly as
/// botogram stores only what pickle can serialize — and the same handler code keeps working when
/// the store moves out of process. Cloning the handle is cheap and shares the memory.
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
    memory: MemoryId,
    backend: Backend,
    preparers: Vec<&'static dyn Prepare>,
    /// When this handle last saw the memory prepared, in nanoseconds since `created` (0: not
    /// since it was made or cleared). The in-process store answers directly instead.
    prepared_seen: AtomicU64,
    created: Instant,
    /// Callers of this handle that need the memory prepared queue here, so that one of them at a
    /// time deals with the store.
    preparing: tokio::sync::Mutex<()>,
    /// The operation counters of its store, once the operator serves metrics.
    counted: Arc<OnceLock<StoreMetrics>>,
}

enum Backend {
    /// The built-in store, called directly: no boxed future, no allocation per operation.
    InProcess(InProcessStore, Arc<InProcessSpace>),
    Other(Other),
}

/// Any other store, through the trait.
struct Other {
    store: Arc<dyn Store>,
    /// `update`s of one key in this process take turns to compute and send their write, each
    /// chained on the version the previous one will have written, then wait for their replies
    /// together: tasks of one process do not make each other retry.
    updates: LocalLocks<KeyState>,
    /// Tasks of this process waiting for a lock queue here, so that only one of them asks the store.
    locks: LocalLocks<()>,
}

/// What this process knows of a key it updates.
#[derive(Default)]
struct KeyState {
    /// The value and version the next update starts from (`Some(None)`: no value), or `None` to
    /// read it first. It may be ahead of the store (writes on their way) or behind it (another
    /// process wrote): the compare-and-set tells, and a failed one says what the store holds.
    base: Option<Option<Versioned>>,
    /// Bumped whenever `base` restarts from the store.
    epoch: u64,
    /// The write that updates chained on `base` are gathered into, until it is sent.
    gathering: Option<gather::Gathering<gather::Chained>>,
    /// The plain write that `set`s are gathered into, until it is sent.
    setting: Option<gather::Gathering<gather::Plain>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Shared");
        debug.field("memory", &self.space.memory);
        match &self.space.backend {
            Backend::InProcess(_, space) => {
                let mut keys = space.keys();
                keys.sort();
                debug.field("keys", &keys)
            }
            Backend::Other(other) => debug.field("store", &other.store.describe()),
        };
        debug.finish()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

impl Shared {
    /// A new, empty, standalone shared memory (the bot level) in a store of its own. Operators make
    /// their own; this is for tests and for code that uses the store directly.
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
        Shared::in_store(
            &StoreRef::InProcess(InProcessStore::new()),
            MemoryId::new(DEFAULT_BOT_NAME, None),
            Vec::new(),
            Arc::default(),
        )
    }

    fn in_store(
        store: &StoreRef,
        memory: MemoryId,
        preparers: Vec<&'static dyn Prepare>,
        counted: Arc<OnceLock<StoreMetrics>>,
    ) -> Self {
        let backend = match store {
            StoreRef::InProcess(store) => Backend::InProcess(store.clone(), store.space(&memory)),
            StoreRef::Dyn(store) => Backend::Other(Other {
                store: Arc::clone(store),
                updates: LocalLocks::default(),
                locks: LocalLocks::default(),
            }),
        };
        Shared {
            space: Arc::new(Space {
                memory,
                backend,
                preparers,
                prepared_seen: AtomicU64::new(0),
                created: Instant::now(),
                preparing: tokio::sync::Mutex::new(()),
                counted,
            }),
        }
    }

    /// The component this memory belongs to, or `None` for the bot-level memory.
    pub fn component(&self) -> Option<&str> {
        self.space.memory.component()
    }

    /// The name of the bot this memory belongs to (see [`Operator::name`](crate::Operator::name)).
    pub fn bot(&self) -> &str {
        self.space.memory.bot()
    }

    /// A copy of the value under `key`, or `None` if there is none.
    ///
    /// Fails if the stored value is not a `T`, naming the key and the type, or if the store
    /// cannot be reached.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let found = match &self.space.backend {
            Backend::InProcess(_, space) => match space.shard(key).get(key) {
                Some(value) => decode(key, value).map(Some),
                None => Ok(None),
            },
            Backend::Other(other) => other
                .store
                .get(&self.space.memory, key)
                .await
                .and_then(|found| found.map(|found| decode(key, &found.value)).transpose()),
        };
        self.counted(Operation::Get, found)
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// Fails (storing nothing) if the value cannot be serialized, or does not read back as it was
    /// written (a NaN or infinite float anywhere inside it: JSON has none).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let err = shared.set("ratio", f64::NAN).await.unwrap_err();
    /// assert!(err.to_string().contains("`ratio`"));
    /// assert!(!shared.contains("ratio").await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set(&self, key: &str, value: impl Serialize) -> Result<()> {
        let value = match encode(key, &value) {
            Ok(value) => value,
            Err(err) => return self.counted(Operation::Set, Err(err)),
        };
        let written = match &self.space.backend {
            Backend::InProcess(_, space) => {
                InProcessSpace::store(&mut space.shard(key), key, value);
                Ok(())
            }
            Backend::Other(other) => {
                let local = other.updates.lock(key).await;
                match gather::landed(gather::join_set(&self.space, local, value)).await {
                    gather::Landed::Done => Ok(()),
                    gather::Landed::Failed { unknown, message } => Err(gather::Landed::error(unknown, &message)),
                    gather::Landed::Changed(_) => Err(Error::Store(format!(
                        "the write of key `{key}` was refused as a compare-and-set; nothing was written"
                    ))),
                }
            }
        };
        self.counted(Operation::Set, written)
    }

    /// Atomically reads, modifies and writes the value under `key`: no concurrent `update` or
    /// `set` from any worker — or, with a shared store, any process — can slip in between. A
    /// missing key starts from `T::default()`. Returns what `f` returns.
    ///
    /// With a store shared by processes this is a compare-and-set: if another process wrote the
    /// key between the read and the write, `f` runs again on the new value. So `f` should only
    /// compute (no side effects that must happen once). As it may be kept across an await, `f`
    /// and what it returns must be `Send` in a handler.
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
    pub async fn update<T, R>(&self, key: &str, f: impl FnMut(&mut T) -> R) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let updated = match &self.space.backend {
            Backend::InProcess(_, space) => update_in_place(space, key, f),
            // Boxed: inline, the remote path's large state would make every in-process `update`
            // future as large.
            Backend::Other(other) => Box::pin(self.update_in_store(other, key, None, f)).await,
        };
        self.counted(Operation::Update, updated)
    }

    async fn update_in_store<T, R>(
        &self,
        other: &Other,
        key: &str,
        fence: Option<(&str, &str)>,
        mut f: impl FnMut(&mut T) -> R,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let memory = &self.space.memory;
        let mut failed: Option<(u64, Option<Versioned>)> = None;
        let mut backoff = Backoff::new(Duration::from_micros(200), Duration::from_millis(20));
        for attempt in 0u32.. {
            let mut local = other.updates.lock(key).await;
            let state = local.data();
            if let Some((epoch, now)) = failed.take() {
                // The first failure of a chain restarts it from what the store holds; the later
                // ones of the same chain find it restarted already.
                if state.epoch == epoch {
                    state.base = Some(now);
                    state.epoch += 1;
                }
            }
            let base = match &state.base {
                Some(base) => base.clone(),
                None => {
                    let read = other.store.get(memory, key).await?;
                    state.base = Some(read.clone());
                    read
                }
            };
            let epoch = state.epoch;
            // Scoped so that the value (a `T`) is not held across the awaits below.
            let (result, encoded) = {
                let mut value: T = match &base {
                    Some(found) => decode(key, &found.value)?,
                    None => T::default(),
                };
                let result = f(&mut value);
                (result, encode(key, &value)?)
            };
            let gatherable = fence.is_none() && gather::may_join(state, epoch);
            if !gatherable && let Some(open) = gather::open(state) {
                // A write chained past an unsent gathering would make the gathering's value hold
                // this update's closure even if this write fails: wait until it is sent, then run
                // the closure again on what it left.
                drop(local);
                let _ = gather::landed(open).await;
                continue;
            }
            if gatherable && let Some(version) = other.store.version_after_write(&encoded) {
                // Chained: the next update starts from this one's value, and joins its write.
                let expected = base.as_ref().map(|found| found.version.clone());
                state.base = Some(Some(Versioned {
                    value: encoded.clone(),
                    version,
                }));
                let done = gather::join(&self.space, local, epoch, expected, encoded);
                match gather::landed(done).await {
                    gather::Landed::Done => return Ok(result),
                    gather::Landed::Changed(now) => failed = Some((epoch, now)),
                    gather::Landed::Failed { unknown, message } => {
                        self.forget_base(other, key, epoch, None).await;
                        return Err(gather::Landed::error(unknown, &message));
                    }
                }
                if attempt >= 3 {
                    backoff.wait().await;
                }
                continue;
            }
            let expected = base.as_ref().map(|found| &found.version);
            let mut write = other
                .store
                .compare_and_set(memory, key, expected, encoded.clone(), fence);
            // Polled once while holding the key, so that the store has the writes of this
            // process in the order their bases were chained.
            let early = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
            let mut held = Some(local);
            let mut _retained = None;
            if let Some(version) = other.store.version_after_write(&encoded)
                && let Some(mut local) = held.take()
            {
                local.data().base = Some(Some(Versioned {
                    value: encoded.clone(),
                    version,
                }));
                _retained = Some(local.unlock());
            }
            let outcome = match early {
                std::task::Poll::Ready(outcome) => outcome,
                std::task::Poll::Pending => write.await,
            };
            match outcome {
                Ok(Written::Done(version)) => {
                    if let Some(local) = held.as_mut() {
                        local.data().base = Some(Some(Versioned {
                            value: encoded,
                            version,
                        }));
                    }
                    return Ok(result);
                }
                Ok(Written::Changed(now)) => failed = Some((epoch, now)),
                Ok(Written::LeaseLost) => {
                    self.forget_base(other, key, epoch, held).await;
                    return Err(lease_lost(fence, key));
                }
                Err(err) => {
                    self.forget_base(other, key, epoch, held).await;
                    return Err(err);
                }
            }
            // Every failed try means another writer succeeded, so this always ends; waiting a
            // little after a few tries lets a burst of writers from other processes pass.
            if attempt >= 3 {
                backoff.wait().await;
            }
        }
        unreachable!("the loop above only ends by returning")
    }

    /// After a write that failed for another reason than a changed value, the next update of the
    /// key starts by reading it.
    async fn forget_base(&self, other: &Other, key: &str, epoch: u64, held: Option<LocalGuard<KeyState>>) {
        let mut local = match held {
            Some(local) => local,
            None => other.updates.lock(key).await,
        };
        let state = local.data();
        if state.epoch == epoch {
            state.base = None;
            state.epoch += 1;
        }
    }

    /// Removes `key`; returns whether it was there.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        let removed = match &self.space.backend {
            Backend::InProcess(_, space) => Ok(space.shard(key).remove(key).is_some()),
            Backend::Other(other) => other.store.remove(&self.space.memory, key).await,
        };
        self.counted(Operation::Remove, removed)
    }

    /// Whether a value is stored under `key`.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        let contained = match &self.space.backend {
            Backend::InProcess(_, space) => Ok(space.shard(key).contains_key(key)),
            Backend::Other(other) => other.store.contains(&self.space.memory, key).await,
        };
        self.counted(Operation::Contains, contained)
    }

    /// Every key, sorted.
    pub async fn keys(&self) -> Result<Vec<String>> {
        let keys = match &self.space.backend {
            Backend::InProcess(_, space) => Ok(space.keys()),
            Backend::Other(other) => other.store.keys(&self.space.memory).await,
        };
        self.counted(Operation::Keys, keys).map(|mut keys| {
            keys.sort();
            keys
        })
    }

    /// Removes every key of this memory, its locks' leases and its "prepared" mark: the next
    /// handler that needs it runs the preparers again. Other memories (other bots, other
    /// components) are untouched.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// shared.set("messages", 3u64).await?;
    /// shared.clear().await?;
    /// assert!(shared.keys().await?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn clear(&self) -> Result<()> {
        self.space.prepared_seen.store(0, Ordering::SeqCst);
        let cleared = match &self.space.backend {
            Backend::InProcess(_, space) => {
                space.clear();
                Ok(())
            }
            Backend::Other(other) => other.store.clear(&self.space.memory).await,
        };
        self.counted(Operation::Clear, cleared)
    }

    /// Counts an operation for the metrics, if the operator serves them.
    #[inline]
    pub(crate) fn counted<T>(&self, operation: Operation, result: Result<T>) -> Result<T> {
        match self.space.counted.get() {
            Some(metrics) => metrics.count(operation, result),
            None => result,
        }
    }

    /// The memory's identity, its store, and its preparers: what preparing it needs.
    pub(crate) fn memory(&self) -> &MemoryId {
        &self.space.memory
    }

    pub(crate) fn preparers(&self) -> &[&'static dyn Prepare] {
        &self.space.preparers
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        match &self.space.backend {
            Backend::InProcess(store, _) => Arc::new(store.clone()),
            Backend::Other(other) => Arc::clone(&other.store),
        }
    }

    /// Whether the memory is known to be prepared, without asking a remote store. What a remote
    /// store said is trusted for [`PREPARED_RECHECK`]: after that the store is asked again, so
    /// that a `clear` by another replica makes this one prepare again.
    pub(crate) fn known_prepared(&self) -> bool {
        match &self.space.backend {
            Backend::InProcess(_, space) => space.is_prepared(),
            Backend::Other(_) => {
                let seen = self.space.prepared_seen.load(Ordering::Acquire);
                seen != 0 && self.space.created.elapsed().as_nanos() < u128::from(seen) + PREPARED_RECHECK.as_nanos()
            }
        }
    }

    pub(crate) fn mark_known_prepared(&self) {
        let now = u64::try_from(self.space.created.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.space.prepared_seen.store(now.max(1), Ordering::Release);
    }

    pub(crate) fn preparing(&self) -> &tokio::sync::Mutex<()> {
        &self.space.preparing
    }
}

/// How long a handle trusts a remote store's "prepared" mark before asking again: one round trip
/// per memory per second at most, and a `clear` from another replica is seen within a second.
const PREPARED_RECHECK: Duration = Duration::from_secs(1);

/// The bot name of an operator not given one (see [`Operator::name`](crate::Operator::name)).
pub const DEFAULT_BOT_NAME: &str = "memo";

fn lease_lost(fence: Option<(&str, &str)>, key: &str) -> Error {
    Error::LeaseLost {
        lock: fence.map(|(lock, _)| lock.to_owned()).unwrap_or_default(),
        key: key.to_owned(),
    }
}

#[inline]
fn update_in_place<T, R>(space: &InProcessSpace, key: &str, mut f: impl FnMut(&mut T) -> R) -> Result<R>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut values = space.shard(key);
    let mut current: T = match values.get(key) {
        Some(value) => decode(key, value)?,
        None => T::default(),
    };
    let result = f(&mut current);
    InProcessSpace::store(&mut values, key, encode(key, &current)?);
    Ok(result)
}

/// Every shared memory of one operator: the bot's and each component's, made on first use, each
/// with the preparers registered for it, all in one store under the bot's name.
#[derive(Clone)]
pub(crate) struct SharedMemory {
    preparers: Arc<[&'static dyn Prepare]>,
    store: StoreRef,
    bot: Arc<str>,
    spaces: Arc<Mutex<HashMap<Option<String>, Shared>>>,
    counted: Arc<OnceLock<StoreMetrics>>,
}

impl SharedMemory {
    pub(crate) fn new(preparers: Vec<&'static dyn Prepare>, store: StoreRef, bot: Arc<str>) -> Self {
        SharedMemory {
            preparers: preparers.into(),
            store,
            bot,
            spaces: Arc::default(),
            counted: Arc::default(),
        }
    }

    /// Counts the operations of every memory (made or to be made) in `metrics`.
    pub(crate) fn count_operations(&self, metrics: &Metrics) {
        let store = match &self.store {
            StoreRef::InProcess(_) => "in-process".to_owned(),
            StoreRef::Dyn(store) => store.describe(),
        };
        // Set once per operator: a second run of the same memories counts where the first did.
        let _ = self.counted.set(metrics.store(&store));
    }

    /// The same memories in another store or under another bot name.
    pub(crate) fn with(&self, store: StoreRef, bot: Arc<str>) -> Self {
        SharedMemory::new(self.preparers.to_vec(), store, bot)
    }

    pub(crate) fn store(&self) -> &StoreRef {
        &self.store
    }

    pub(crate) fn bot(&self) -> &Arc<str> {
        &self.bot
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
                    .filter(|p| p.component() == component)
                    .collect();
                Shared::in_store(
                    &self.store,
                    MemoryId::new(&self.bot, component),
                    preparers,
                    Arc::clone(&self.counted),
                )
            })
            .clone()
    }
}
