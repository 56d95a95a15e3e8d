//! Named async mutexes inside one process whose table does not grow with every name ever used:
//! names that no one holds or waits for are swept out whenever the table has doubled since the
//! last sweep, so it holds at most about twice the names in use (and never fewer than
//! [`SWEEP_FLOOR`] before sweeping). Between sweeps a name used again finds its entry, so the
//! common case allocates nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Below this many names the table is not swept.
pub(crate) const SWEEP_FLOOR: usize = 64;

struct Table<T> {
    entries: HashMap<Arc<str>, Arc<AsyncMutex<T>>, ahash::RandomState>,
    /// The size at which the next insertion sweeps.
    sweep_at: usize,
}

/// A table of named mutexes, each guarding a `T` (the data of whoever holds the name).
pub(crate) struct LocalLocks<T> {
    table: Mutex<Table<T>>,
}

impl<T> Default for LocalLocks<T> {
    fn default() -> Self {
        LocalLocks {
            table: Mutex::new(Table {
                entries: HashMap::default(),
                sweep_at: SWEEP_FLOOR,
            }),
        }
    }
}

impl<T: Default + Send + 'static> LocalLocks<T> {
    /// Waits for the named mutex (without spinning: tokio queues the waiters in order).
    pub(crate) async fn lock(&self, name: &str) -> LocalGuard<T> {
        let (name, entry) = self.entry(name);
        LocalGuard {
            guard: entry.lock_owned().await,
            name,
        }
    }

    fn entry(&self, name: &str) -> (Arc<str>, Arc<AsyncMutex<T>>) {
        let mut table = self.table();
        if let Some((name, entry)) = table.entries.get_key_value(name) {
            return (Arc::clone(name), Arc::clone(entry));
        }
        if table.entries.len() >= table.sweep_at {
            // Only the table holds an unused entry: anyone holding or waiting has a clone, taken
            // under this lock.
            table.entries.retain(|_, entry| Arc::strong_count(entry) > 1);
            table.sweep_at = (table.entries.len() * 2).max(SWEEP_FLOOR);
        }
        let name: Arc<str> = name.into();
        let entry = Arc::new(AsyncMutex::new(T::default()));
        table.entries.insert(Arc::clone(&name), Arc::clone(&entry));
        (name, entry)
    }

    fn table(&self) -> MutexGuard<'_, Table<T>> {
        // Every change to the table is a single insert or a sweep: a poisoned lock is consistent.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many names take memory now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table().entries.len()
    }
}

/// Holds one named mutex; gives access to its data.
pub(crate) struct LocalGuard<T> {
    guard: OwnedMutexGuard<T>,
    name: Arc<str>,
}

impl<T> LocalGuard<T> {
    /// The data of this name.
    pub(crate) fn data(&mut self) -> &mut T {
        &mut self.guard
    }

    /// The name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Unlocks, but keeps the name's entry (and its data) from being swept until the returned
    /// handle drops.
    pub(crate) fn unlock(self) -> Retained<T> {
        let entry = Arc::clone(OwnedMutexGuard::mutex(&self.guard));
        drop(self);
        Retained(entry)
    }
}

/// Keeps a name's entry alive without holding it (see [`LocalGuard::unlock`]).
pub(crate) struct Retained<T>(#[allow(dead_code)] Arc<AsyncMutex<T>>);

#[cfg(test)]
mod tests {
    use super::{LocalLocks, SWEEP_FLOOR};
    use std::time::Duration;

    #[tokio::test]
    async fn names_no_one_holds_do_not_accumulate() {
        let locks = LocalLocks::<u32>::default();
        for n in 0..10_000 {
            let mut guard = locks.lock(&format!("name-{n}")).await;
            *guard.data() += 1;
        }
        assert!(locks.len() <= SWEEP_FLOOR, "{} names kept", locks.len());
    }

    #[tokio::test]
    async fn held_and_awaited_names_survive_a_sweep() {
        let locks = LocalLocks::<u32>::default();
        let mut held = locks.lock("held").await;
        *held.data() = 7;
        let waiting = tokio::time::timeout(Duration::from_millis(20), locks.lock("held")).await;
        assert!(waiting.is_err(), "the name is held");
        for n in 0..1_000 {
            drop(locks.lock(&format!("name-{n}")).await);
        }
        assert!(locks.len() <= SWEEP_FLOOR);
        drop(held);
        let mut again = locks.lock("held").await;
        assert_eq!(*again.data(), 7, "the held entry was kept, data and all");
    }

    #[tokio::test]
    async fn a_waiter_gets_the_name_after_the_holder() {
        let locks = std::sync::Arc::new(LocalLocks::<u32>::default());
        let mut first = locks.lock("a").await;
        *first.data() = 7;
        let waiter = tokio::spawn({
            let locks = std::sync::Arc::clone(&locks);
            async move { *locks.lock("a").await.data() }
        });
        tokio::task::yield_now().await;
        drop(first);
        assert_eq!(waiter.await.unwrap(), 7);
    }
}
