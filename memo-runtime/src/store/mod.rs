//! Where shared memory lives: the [`Store`] trait that a backend implements, the built-in
//! [`InProcessStore`], and (feature `redis`) `RedisStore`.
//!
//! A store only stores, locks and marks: it keeps JSON values per memory, hands out lease locks
//! with fencing tokens, and remembers whether a memory was prepared. Running the preparers, retrying
//! `update`, waiting for a lock and renewing its lease are the runtime's job, so a new backend
//! implements a handful of plain, non-blocking operations.
//!
//! A memory is named by a [`MemoryId`]: the bot's name (see `Operator::name`) and, for a
//! component's memory, the component. Two memories never see each other's keys, locks or marks.
//!
//! ```
//! use memo_runtime::prelude::*;
//! use memo_runtime::store::InProcessStore;
//!
//! // The default: every `Operator` gets an in-process store of its own.
//! let operator = Operator::new().name("message-counter").store(InProcessStore::new());
//! # drop(operator);
//! ```

pub(crate) mod backoff;
pub(crate) mod in_process;
pub(crate) mod leaser;
pub(crate) mod local_locks;
pub(crate) mod progress;
#[cfg(feature = "redis")]
mod redis;
mod token;

use crate::api::error::Result;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use in_process::InProcessStore;
pub use progress::{AnnotationsProgress, DEFAULT_PROGRESS_PREFIX, ProgressStore, SharedProgress};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use token::new_token;

/// The future a [`Store`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The lease a lock or a preparation gets unless the store is told otherwise: long enough that a
/// busy process renews it in time, short enough that a dead holder does not block others for long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// Which memory an operation is about: a bot's, or one of its components'.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MemoryId {
    bot: Arc<str>,
    component: Option<Arc<str>>,
}

impl MemoryId {
    /// The memory of bot `bot` (`component: None`) or of one of its components.
    ///
    /// ```
    /// let id = memo_runtime::store::MemoryId::new("message-counter", Some("per-name"));
    /// assert_eq!(id.bot(), "message-counter");
    /// assert_eq!(id.component(), Some("per-name"));
    /// ```
    pub fn new(bot: &str, component: Option<&str>) -> Self {
        MemoryId {
            bot: bot.into(),
            component: component.map(Into::into),
        }
    }

    /// The bot's name.
    pub fn bot(&self) -> &str {
        &self.bot
    }

    /// The component, or `None` for the bot-level memory.
    pub fn component(&self) -> Option<&str> {
        self.component.as_deref()
    }
}

impl fmt::Debug for MemoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MemoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.component {
            Some(component) => write!(f, "bot `{}`, component `{component}`", self.bot),
            None => write!(f, "bot `{}`", self.bot),
        }
    }
}

/// What a store hands back with a value so that a later [`Store::compare_and_set`] can tell whether
/// it changed meanwhile. Opaque to the runtime: a counter, or (as `RedisStore` does) the stored
/// text itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Version(Arc<str>);

impl Version {
    /// A version from the store's own representation.
    pub fn new(version: impl Into<Arc<str>>) -> Self {
        Version(version.into())
    }

    /// The store's representation.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", self.0)
    }
}

/// A value with the version it had when read.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    /// The value.
    pub value: Value,
    /// Its version.
    pub version: Version,
}

/// What a conditional write did.
#[derive(Clone, Debug, PartialEq)]
pub enum Written {
    /// The value was written; this is its version now.
    Done(Version),
    /// Nothing was written: the key no longer had the expected version. This is what it has now
    /// (`None`: no value), so that a retry needs no extra read.
    Changed(Option<Versioned>),
    /// Nothing was written: the lock's lease named in a fenced write is no longer this holder's.
    LeaseLost,
}

/// A lock taken with [`Store::try_lock`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Strictly larger than every fencing token given before for this lock name of this memory,
    /// by any process.
    pub fencing_token: u64,
}

/// Where a memory's preparation stands, as [`Store::begin_preparation`] found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preparation {
    /// The memory is prepared: nothing to run.
    Prepared,
    /// The caller holds the preparation lease: it runs the preparers, then calls
    /// [`Store::finish_preparation`].
    Won,
    /// Another holder is preparing it: wait and ask again.
    Busy,
}

/// A place to keep shared memories: the operations the runtime builds [`Shared`](crate::Shared)
/// on. Every operation names its memory; `holder` is a random token (see [`new_token`]) that
/// identifies one lock or preparation attempt across processes.
///
/// Implement it to keep shared memory elsewhere; [`InProcessStore`] is the smallest example.
/// Values are JSON: a store that keeps text must give back what it was given, so that every
/// replica reads the same value.
///
/// A write (`set`, `compare_and_set`, `set_fenced`) that returns an error must have written
/// nothing, unless the error is [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown): callers
/// make a failed write again, and only that error tells them it may already be applied. A store
/// that can lose a reply finds out what became of the write before it answers, as `RedisStore`
/// does.
pub trait Store: Send + Sync + 'static {
    /// A short description for logs and errors, such as `redis://127.0.0.1:6379/`.
    fn describe(&self) -> String;

    /// How long a lock or a preparation lease lasts unless renewed. The runtime renews held
    /// leases three times per lease.
    fn lease(&self) -> Duration {
        DEFAULT_LEASE
    }

    /// The value under `key`, with its version.
    fn get<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, Option<Versioned>>;

    /// Stores `value` under `key`, whatever was there.
    fn set<'a>(&'a self, memory: &'a MemoryId, key: &'a str, value: Value) -> StoreFuture<'a, ()>;

    /// The version that `value` will have once written, if the store can tell before writing
    /// (default: it cannot). A store that can, and that runs the writes of one connection in the
    /// order they were sent, lets `update`s of one key from one process overlap: each starts from
    /// the version the previous one will have written, instead of waiting for it.
    fn version_after_write(&self, value: &Value) -> Option<Version> {
        let _ = value;
        None
    }

    /// Stores `value` under `key` only if the key still has version `expected` (`None`: only if
    /// the key has no value), atomically with that check. With `fence = Some((lock, holder))`,
    /// also only if `holder` still holds the lease of lock `lock`, in the same atomic step.
    fn compare_and_set<'a>(
        &'a self,
        memory: &'a MemoryId,
        key: &'a str,
        expected: Option<&'a Version>,
        value: Value,
        fence: Option<(&'a str, &'a str)>,
    ) -> StoreFuture<'a, Written>;

    /// Stores `value` under `key` only if `holder` still holds the lease of lock `lock`,
    /// atomically with that check. Returns [`Written::Done`] or [`Written::LeaseLost`].
    fn set_fenced<'a>(
        &'a self,
        memory: &'a MemoryId,
        lock: &'a str,
        holder: &'a str,
        key: &'a str,
        value: Value,
    ) -> StoreFuture<'a, Written>;

    /// Removes `key`; returns whether it was there.
    fn remove<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool>;

    /// Whether `key` has a value.
    fn contains<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool>;

    /// Every key of the memory, in any order.
    fn keys<'a>(&'a self, memory: &'a MemoryId) -> StoreFuture<'a, Vec<String>>;

    /// Removes every value of the memory, its locks' leases and its prepared mark. Fencing
    /// counters stay, so tokens keep increasing after a clear.
    fn clear<'a>(&'a self, memory: &'a MemoryId) -> StoreFuture<'a, ()>;

    /// Takes lock `name` for `holder` if no one holds it, for [`Store::lease`]; `None` if someone
    /// does. Never waits.
    fn try_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, Option<Lease>>;

    /// Extends `holder`'s lease of lock `name` by [`Store::lease`]; `false` if it is no longer
    /// `holder`'s (it ran out, or the memory was cleared).
    fn renew_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool>;

    /// Releases `holder`'s lease of lock `name`; `false` if it was no longer `holder`'s.
    fn unlock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool>;

    /// Whether the memory is prepared and, if not and no one is preparing it, takes the
    /// preparation lease for `holder`, atomically.
    fn begin_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str) -> StoreFuture<'a, Preparation>;

    /// Extends `holder`'s preparation lease; `false` if it is no longer `holder`'s.
    fn renew_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str) -> StoreFuture<'a, bool>;

    /// Ends `holder`'s preparation: marks the memory prepared if `prepared`, and releases the
    /// preparation lease if it is still `holder`'s.
    fn finish_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str, prepared: bool) -> StoreFuture<'a, ()>;
}

/// The store an operator's memories live in: the built-in one directly (no boxed future on its
/// hot path), any other through the trait.
#[derive(Clone)]
pub(crate) enum StoreRef {
    InProcess(InProcessStore),
    Dyn(Arc<dyn Store>),
}

impl StoreRef {
    /// The store, through the trait (an in-process store's clones share its contents).
    pub(crate) fn to_shared(&self) -> Arc<dyn Store> {
        match self {
            StoreRef::InProcess(store) => Arc::new(store.clone()),
            StoreRef::Dyn(store) => Arc::clone(store),
        }
    }

    pub(crate) fn of<S: Store>(store: S) -> Self {
        match (&store as &dyn std::any::Any).downcast_ref::<InProcessStore>() {
            Some(in_process) => StoreRef::InProcess(in_process.clone()),
            None => StoreRef::Dyn(Arc::new(store)),
        }
    }
}

impl fmt::Debug for StoreRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreRef::InProcess(_) => f.write_str("in-process"),
            StoreRef::Dyn(store) => f.write_str(&store.describe()),
        }
    }
}
