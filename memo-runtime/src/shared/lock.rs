//! Named locks of a shared memory: in-process mutexes, or leases of a shared store renewed in the
//! background, with fencing tokens and fenced writes.

use super::codec::encode;
use super::{Backend, Other, Shared, update_in_place};
use crate::api::error::{Error, Result};
use crate::observe::metrics::Operation;
use crate::store::backoff::Backoff;
use crate::store::in_process::{InProcessLock, InProcessSpace};
use crate::store::local_locks::LocalGuard;
use crate::store::{MemoryId, Store, Written, new_token};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Holds a named lock of a [`Shared`] memory until dropped or [`released`](LockGuard::release).
///
/// With a store shared by processes the lock is a lease: renewed in the background while the
/// guard lives, and freed by the store if the holder dies. Writes that must not land after the
/// lease was lost go through [`Shared::set_fenced`] and [`Shared::update_fenced`], and a resource
/// outside the store can refuse a stale holder by its [`fencing_token`](LockGuard::fencing_token).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    name: Arc<str>,
    fencing_token: u64,
    held: Held,
}

enum Held {
    InProcess(Arc<InProcessSpace>, #[allow(dead_code)] InProcessLock),
    Leased(Leased),
}

/// A lease taken from a store, renewed in the background, released on drop.
struct Leased {
    store: Arc<dyn Store>,
    memory: MemoryId,
    name: Arc<str>,
    holder: Arc<str>,
    renewal: tokio::task::JoinHandle<()>,
    local: Option<LocalGuard<()>>,
    /// Set once [`LockGuard::unlock`] has released the lease, so that dropping does not again.
    released: bool,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A number that is larger for every new holder of this lock name in this memory, across every
    /// process: a resource outside the store that remembers the largest token it saw can refuse
    /// writes from an older holder that lost its lease without knowing it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let first = shared.lock("deploy").await?.fencing_token();
    /// let second = shared.lock("deploy").await?.fencing_token();
    /// assert!(second > first);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    /// Releases the lock now (dropping the guard does the same). With a store shared by processes
    /// the release is sent in the background; see [`unlock`](LockGuard::unlock) to wait for it.
    pub fn release(self) {}

    /// Releases the lock and waits until the store has: use it before a process exits (a release
    /// still in the background then would be lost, and others would wait for the lease to run
    /// out), or to learn whether the lease was still held. Returns `false` if it had been lost.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let guard = shared.lock("deploy").await?;
    /// assert!(guard.unlock().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn unlock(mut self) -> Result<bool> {
        match &mut self.held {
            Held::InProcess(..) => Ok(true),
            Held::Leased(leased) => {
                leased.renewal.abort();
                let held = leased
                    .store
                    .unlock(&leased.memory, &leased.name, &leased.holder)
                    .await?;
                leased.released = true;
                Ok(held)
            }
        }
    }

    fn memory(&self) -> &MemoryId {
        match &self.held {
            Held::InProcess(space, _) => space.memory(),
            Held::Leased(leased) => &leased.memory,
        }
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        self.renewal.abort();
        let local = self.local.take();
        if self.released {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Without a runtime the lease cannot be released: it runs out by itself.
            return;
        };
        let store = Arc::clone(&self.store);
        let (memory, name, holder) = (self.memory.clone(), Arc::clone(&self.name), Arc::clone(&self.holder));
        runtime.spawn(async move {
            match store.unlock(&memory, &name, &holder).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(target: "memo", lock = &*name, "lock `{name}` of {memory} was released after its lease had been lost"),
                Err(err) => tracing::warn!(target: "memo", lock = &*name, "cannot release lock `{name}` of {memory} (its lease will run out): {err}"),
            }
            // The next waiter of this process starts only once the store has released the lease,
            // so that its first try succeeds instead of backing off.
            drop(local);
        });
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("fencing_token", &self.fencing_token)
            .finish()
    }
}

impl Shared {
    /// Takes the named lock of this memory, waiting while another holder has it. Lock names are
    /// per bot and component: a component's `"counter"` lock is not the bot's.
    ///
    /// With a store shared by processes, the lock is a lease of the store's
    /// [`lease`](crate::store::Store::lease) length, renewed in the background while the guard
    /// lives; waiting backs off (up to 100 ms between tries) instead of spinning.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let guard = shared.lock("update-messages").await?;
    /// let n: u64 = shared.get("messages").await?.unwrap_or(0);
    /// shared.set_fenced(&guard, "messages", n + 1).await?;
    /// guard.release();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lock(&self, name: &str) -> Result<LockGuard> {
        let locked = self.lock_uncounted(name).await;
        self.counted(Operation::Lock, locked)
    }

    async fn lock_uncounted(&self, name: &str) -> Result<LockGuard> {
        match &self.space.backend {
            Backend::InProcess(_, space) => {
                let lock = space.lock(name).await;
                Ok(LockGuard {
                    name: Arc::clone(lock.name()),
                    fencing_token: lock.fencing_token,
                    held: Held::InProcess(Arc::clone(space), lock),
                })
            }
            // Boxed, as in `update`: the in-process future stays small.
            Backend::Other(other) => Box::pin(self.lease(other, name)).await,
        }
    }

    async fn lease(&self, other: &Other, name: &str) -> Result<LockGuard> {
        let memory = &self.space.memory;
        let local = other.locks.lock(name).await;
        let holder: Arc<str> = new_token().into();
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(100));
        let lease = loop {
            match other.store.try_lock(memory, name, &holder).await? {
                Some(lease) => break lease,
                None => backoff.wait().await,
            }
        };
        let name: Arc<str> = Arc::clone(local.name());
        let renewal = tokio::spawn(renew_lock(
            Arc::clone(&other.store),
            memory.clone(),
            Arc::clone(&name),
            Arc::clone(&holder),
        ));
        Ok(LockGuard {
            name: Arc::clone(&name),
            fencing_token: lease.fencing_token,
            held: Held::Leased(Leased {
                store: Arc::clone(&other.store),
                memory: memory.clone(),
                name: Arc::clone(&name),
                holder,
                renewal,
                local: Some(local),
                released: false,
            }),
        })
    }

    /// Stores `value` under `key` only if `guard` still holds its lock, checked atomically with
    /// the write inside the store: a holder that was paused past its lease (a long GC-like stall,
    /// a slow network) gets [`Error::LeaseLost`] and writes nothing, instead of overwriting what
    /// the lock's next holder wrote.
    ///
    /// `guard` must be a lock of this memory.
    pub async fn set_fenced(&self, guard: &LockGuard, key: &str, value: impl Serialize) -> Result<()> {
        let written = self.set_fenced_uncounted(guard, key, value).await;
        self.counted(Operation::Set, written)
    }

    async fn set_fenced_uncounted(&self, guard: &LockGuard, key: &str, value: impl Serialize) -> Result<()> {
        let value = encode(key, &value)?;
        match (&self.space.backend, &guard.held) {
            (Backend::InProcess(_, space), Held::InProcess(owner, _)) if Arc::ptr_eq(space, owner) => {
                // An in-process lock cannot be lost: it is held as long as the guard lives.
                InProcessSpace::store(&mut space.shard(key), key, value);
                Ok(())
            }
            (Backend::Other(other), Held::Leased(leased)) if *guard.memory() == self.space.memory => {
                match other
                    .store
                    .set_fenced(&self.space.memory, &guard.name, &leased.holder, key, value)
                    .await?
                {
                    Written::Done(_) => Ok(()),
                    Written::LeaseLost | Written::Changed(_) => Err(Error::LeaseLost {
                        lock: guard.name.to_string(),
                        key: key.to_owned(),
                    }),
                }
            }
            _ => Err(self.foreign_guard(guard)),
        }
    }

    /// [`update`](Shared::update), but only while `guard` still holds its lock, checked atomically
    /// with the write inside the store (see [`set_fenced`](Shared::set_fenced)). On
    /// [`Error::LeaseLost`] nothing was written.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memo_runtime::Result<()> {
    /// let shared = memo_runtime::Shared::new();
    /// let guard = shared.lock("messages").await?;
    /// let n = shared.update_fenced(&guard, "messages", |n: &mut u64| { *n += 1; *n }).await?;
    /// assert_eq!(n, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update_fenced<T, R>(&self, guard: &LockGuard, key: &str, f: impl FnMut(&mut T) -> R) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let updated = self.update_fenced_uncounted(guard, key, f).await;
        self.counted(Operation::Update, updated)
    }

    async fn update_fenced_uncounted<T, R>(&self, guard: &LockGuard, key: &str, f: impl FnMut(&mut T) -> R) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        match (&self.space.backend, &guard.held) {
            (Backend::InProcess(_, space), Held::InProcess(owner, _)) if Arc::ptr_eq(space, owner) => {
                update_in_place(space, key, f)
            }
            (Backend::Other(other), Held::Leased(leased)) if *guard.memory() == self.space.memory => {
                self.update_in_store(other, key, Some((&guard.name, &leased.holder)), f)
                    .await
            }
            _ => Err(self.foreign_guard(guard)),
        }
    }

    fn foreign_guard(&self, guard: &LockGuard) -> Error {
        Error::custom(format!(
            "the guard of lock `{}` belongs to the shared memory of {}, not to this one ({})",
            guard.name,
            guard.memory(),
            self.space.memory
        ))
    }
}

/// Renews a lease three times per lease length until the guard drops (which aborts this task) or
/// the lease turns out lost.
async fn renew_lock(store: Arc<dyn Store>, memory: MemoryId, name: Arc<str>, holder: Arc<str>) {
    let period = store.lease() / 3;
    loop {
        tokio::time::sleep(period).await;
        match store.renew_lock(&memory, &name, &holder).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(target: "memo", lock = &*name, "the lease of lock `{name}` of {memory} was lost; fenced writes with its guard will be refused");
                return;
            }
            // Maybe the store is back before the lease runs out: keep trying.
            Err(err) => {
                tracing::warn!(target: "memo", lock = &*name, "cannot renew the lease of lock `{name}` of {memory}: {err}")
            }
        }
    }
}
