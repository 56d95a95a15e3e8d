//! Named async mutexes inside one process that take no memory while no one holds or waits for
//! them: an entry lives only as long as someone has a handle to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

type Table<T> = Mutex<HashMap<Arc<str>, Arc<AsyncMutex<T>>, ahash::RandomState>>;

/// A table of named mutexes, each guarding a `T` (the data of whoever holds the name).
pub(crate) struct LocalLocks<T> {
    table: Arc<Table<T>>,
}

impl<T> Default for LocalLocks<T> {
    fn default() -> Self {
        LocalLocks { table: Arc::default() }
    }
}

impl<T: Default + Send + 'static> LocalLocks<T> {
    /// Waits for the named mutex (without spinning: tokio queues the waiters in order).
    pub(crate) async fn lock(&self, name: &str) -> LocalGuard<T> {
        let (name, entry) = {
            let mut table = lock_table(&self.table);
            match table.get_key_value(name) {
                Some((name, entry)) => (Arc::clone(name), Arc::clone(entry)),
                None => {
                    let name: Arc<str> = name.into();
                    let entry = Arc::new(AsyncMutex::new(T::default()));
                    table.insert(Arc::clone(&name), Arc::clone(&entry));
                    (name, entry)
                }
            }
        };
        // If this future is dropped while waiting, `Pending` drops its handle and cleans up.
        let pending = Pending {
            table: Arc::clone(&self.table),
            name,
            entry: Some(entry),
        };
        pending.acquire().await
    }

    /// How many names take memory now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock_table(&self.table).len()
    }
}

fn lock_table<T>(
    table: &Table<T>,
) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<AsyncMutex<T>>, ahash::RandomState>> {
    // Every change to the table is a single insert or remove: a poisoned lock is still consistent.
    table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A handle to an entry, not yet locked: dropping it (a cancelled wait) removes the entry if it
/// was the last handle.
struct Pending<T> {
    table: Arc<Table<T>>,
    name: Arc<str>,
    entry: Option<Arc<AsyncMutex<T>>>,
}

impl<T> Pending<T> {
    async fn acquire(mut self) -> LocalGuard<T> {
        let Some(entry) = self.entry.clone() else {
            unreachable!("an entry is only taken out on drop");
        };
        let guard = entry.lock_owned().await;
        LocalGuard {
            guard,
            handle: self.take(),
        }
    }

    fn take(&mut self) -> Pending<T> {
        Pending {
            table: Arc::clone(&self.table),
            name: Arc::clone(&self.name),
            entry: self.entry.take(),
        }
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let mut table = lock_table(&self.table);
        // Every other handle (a holder's guard, a waiter's future) counts, and each is taken under
        // the table lock: one count for the table and one for this handle means no one else.
        if Arc::strong_count(&entry) == 2 {
            table.remove(&self.name);
        }
    }
}

/// Holds one named mutex; gives access to its data.
pub(crate) struct LocalGuard<T> {
    // Fields drop in order: the mutex is unlocked before the handle counts who else has the entry.
    guard: OwnedMutexGuard<T>,
    handle: Pending<T>,
}

impl<T> LocalGuard<T> {
    /// The data of this name.
    pub(crate) fn data(&mut self) -> &mut T {
        &mut self.guard
    }

    /// The name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.handle.name
    }

    /// Unlocks, but keeps the name's entry (and its data) until the returned handle drops.
    pub(crate) fn unlock(self) -> Retained<T> {
        let LocalGuard { guard, handle } = self;
        drop(guard);
        Retained(handle)
    }
}

/// Keeps a name's entry alive without holding it (see [`LocalGuard::unlock`]).
pub(crate) struct Retained<T>(#[allow(dead_code)] Pending<T>);

#[cfg(test)]
mod tests {
    use super::LocalLocks;
    use std::time::Duration;

    #[tokio::test]
    async fn names_no_one_holds_take_no_memory() {
        let locks = LocalLocks::<u32>::default();
        for n in 0..100 {
            let mut guard = locks.lock(&format!("name-{n}")).await;
            *guard.data() += 1;
        }
        assert_eq!(locks.len(), 0);
        let held = locks.lock("held").await;
        let waiting = tokio::time::timeout(Duration::from_millis(20), locks.lock("held")).await;
        assert!(waiting.is_err(), "the name is held");
        assert_eq!(locks.len(), 1, "the held name stays, the cancelled waiter left nothing");
        drop(held);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_keeps_the_entry_and_gets_the_data() {
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
        assert_eq!(locks.len(), 0);
    }
}
