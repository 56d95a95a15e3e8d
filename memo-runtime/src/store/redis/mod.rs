//! Shared memory in Redis: every process of a bot, on any machine, sees the same memories.
//!
//! Every conditional step (compare-and-set, fenced write, lock acquisition with its fencing token,
//! renewal, release, preparation) is one Lua script, so Redis runs it atomically: nothing relies
//! on `WATCH`, which a multiplexed connection cannot isolate per caller.

mod keys;
mod scripts;

use super::{Lease, MemoryId, Preparation, Store, StoreFuture, Version, Versioned, Written};
use crate::{Error, Result};
use keys::{fence_key, glob_escape, lock_key, root, value_key};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use scripts::Scripts;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long [`RedisStore::connect`] tries before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one store operation may take (all its retries included) before it fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// A [`Store`] in Redis (feature `redis`): shared memory that every process and machine of a bot
/// sees, and that outlives them. Cloning it shares the connection.
///
/// One multiplexed connection per store, reconnected in the background when lost: while Redis is
/// unreachable each call fails within 3 seconds (see [`RedisStore::with_timeout`]) with
/// [`Error::Store`], and calls succeed again once it is back.
///
/// # Key layout
/// Every key of a bot starts with `memo:{bot}:`, then the memory: `bot` for the bot-level memory,
/// `component:{component}` for a component's. In the bot and component names, `%` is written
/// `%25` and `:` is written `%3A`, so that no name can reach into another one's keys. Under a
/// memory's root `R`:
///
/// | key | holds |
/// | --- | --- |
/// | `R:value:{key}` | the value of `key`, as JSON text (`redis-cli GET` shows it) |
/// | `R:lock:{name}` | the lease of lock `name`: the holder's random token, expiring with the lease |
/// | `R:fence:{name}` | the last fencing token given for lock `name` (kept by `clear`) |
/// | `R:prepared` | present once the memory's preparers have run |
/// | `R:preparing` | the preparation lease: the preparing replica's token, expiring with it |
///
/// For example, key `messages` of bot `message-counter` is `memo:message-counter:bot:value:messages`,
/// and of its component `per-name`, `memo:message-counter:component:per-name:value:messages`.
///
/// ```no_run
/// use memo_runtime::prelude::*;
/// use memo_runtime::store::RedisStore;
///
/// # async fn start() -> memo_runtime::Result<()> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let operator = Operator::new().name("message-counter").store(store);
/// operator.shared().update("messages", |n: &mut u64| *n += 1).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    url: Arc<str>,
    connection: ConnectionManager,
    lease: Duration,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("lease", &self.lease)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (such as `redis://127.0.0.1:6379/`, or
    /// `redis://:password@host:6379/2` for a password and database 2).
    ///
    /// Fails within a few seconds, naming the URL (without its password), if the URL is wrong or
    /// the server does not answer.
    ///
    /// ```no_run
    /// # async fn start() -> memo_runtime::Result<()> {
    /// let store = memo_runtime::store::RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// # drop(store);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: impl AsRef<str>) -> Result<RedisStore> {
        let url = url.as_ref();
        let shown: Arc<str> = redact(url).into();
        let client = redis::Client::open(url)
            .map_err(|err| Error::Store(format!("`{shown}` is not a usable Redis URL: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection =
            match tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new_with_config(client, config)).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(err)) => return Err(Error::Store(format!("cannot connect to Redis at `{shown}`: {err}"))),
                Err(_) => {
                    return Err(Error::Store(format!(
                        "cannot connect to Redis at `{shown}`: no answer within {CONNECT_TIMEOUT:?}"
                    )))
                }
            };
        tracing::info!(target: "memo", url = &*shown, "connected to Redis at {shown}");
        Ok(RedisStore {
            url: shown,
            connection,
            lease: super::DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// The same store with locks and preparations leased for `lease` (default
    /// [`DEFAULT_LEASE`](super::DEFAULT_LEASE), at least 100 ms). A shorter lease frees the locks
    /// of a dead process sooner; a longer one tolerates longer pauses of a live one.
    ///
    /// ```no_run
    /// # async fn start() -> memo_runtime::Result<()> {
    /// use std::time::Duration;
    /// let store = memo_runtime::store::RedisStore::connect("redis://127.0.0.1:6379/")
    ///     .await?
    ///     .with_lease(Duration::from_secs(5));
    /// # drop(store);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// The same store with each operation bounded by `timeout` (default 3 seconds):
    /// past it, the call fails with [`Error::Store`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL connected to, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one Redis round trip within the timeout; a failure names the URL and the operation.
    async fn run<T>(
        &self,
        what: impl FnOnce() -> String,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Error::Store(format!(
                "Redis at `{}`: {} failed: {err}",
                self.url,
                what()
            ))),
            Err(_) => Err(Error::Store(format!(
                "Redis at `{}`: {} got no answer within {:?}",
                self.url,
                what(),
                self.timeout
            ))),
        }
    }

    fn lease_millis(&self) -> u64 {
        self.lease.as_millis().try_into().unwrap_or(u64::MAX)
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut connection = self.connection.clone();
            let (next, batch): (u64, Vec<String>) = self
                .run(
                    || format!("SCAN of `{pattern}`"),
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut connection),
                )
                .await?;
            found.extend(batch);
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        for batch in keys.chunks(500) {
            let mut connection = self.connection.clone();
            let _: i64 = self
                .run(
                    || "UNLINK".to_owned(),
                    redis::cmd("UNLINK").arg(batch).query_async(&mut connection),
                )
                .await?;
        }
        Ok(())
    }
}

/// `url` without the password, if it has one.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

fn parse(key: &str, text: String) -> Result<Versioned> {
    let value = serde_json::from_str(&text).map_err(|err| Error::SharedType {
        key: key.to_owned(),
        type_name: "JSON text",
        reason: format!("Redis holds {text:?}, which is not JSON: {err}"),
    })?;
    Ok(Versioned {
        value,
        version: Version::new(text),
    })
}

impl RedisStore {
    async fn write(
        &self,
        memory: &MemoryId,
        key: &str,
        expected: Expect<'_>,
        value: Value,
        fence: Option<(&str, &str)>,
    ) -> Result<Written> {
        let text = value.to_string();
        let mut invocation = self.scripts.write.key(value_key(memory, key));
        let holder = match fence {
            Some((lock, holder)) => {
                invocation.key(lock_key(memory, lock));
                holder
            }
            None => "",
        };
        let (mode, expected) = match expected {
            Expect::Any => ("any", ""),
            Expect::Absent => ("absent", ""),
            Expect::Equals(version) => ("equals", version.as_str()),
        };
        invocation.arg(mode).arg(expected).arg(&text).arg(holder);
        let mut connection = self.connection.clone();
        let reply: Vec<String> = self
            .run(
                || format!("write of key `{key}`"),
                invocation.invoke_async(&mut connection),
            )
            .await?;
        let mut reply = reply.into_iter();
        match reply.next().as_deref() {
            Some("done") => Ok(Written::Done(Version::new(text))),
            Some("lost") => Ok(Written::LeaseLost),
            Some("changed") => Ok(Written::Changed(reply.next().map(|now| parse(key, now)).transpose()?)),
            other => Err(Error::Store(format!(
                "Redis at `{}`: unexpected reply {other:?} to a write of key `{key}`",
                self.url
            ))),
        }
    }
}

enum Expect<'a> {
    Any,
    Absent,
    Equals(&'a Version),
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        format!("Redis at {}", self.url)
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    /// A value's version is its JSON text, and one connection's commands run in order.
    fn version_after_write(&self, value: &Value) -> Option<Version> {
        Some(Version::new(value.to_string()))
    }

    fn get<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let text: Option<String> = self
                .run(
                    || format!("GET of key `{key}`"),
                    redis::cmd("GET")
                        .arg(value_key(memory, key))
                        .query_async(&mut connection),
                )
                .await?;
            text.map(|text| parse(key, text)).transpose()
        })
    }

    fn set<'a>(&'a self, memory: &'a MemoryId, key: &'a str, value: Value) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            self.run(
                || format!("SET of key `{key}`"),
                redis::cmd("SET")
                    .arg(value_key(memory, key))
                    .arg(value.to_string())
                    .query_async::<()>(&mut connection),
            )
            .await
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        memory: &'a MemoryId,
        key: &'a str,
        expected: Option<&'a Version>,
        value: Value,
        fence: Option<(&'a str, &'a str)>,
    ) -> StoreFuture<'a, Written> {
        let expected = expected.map_or(Expect::Absent, Expect::Equals);
        Box::pin(self.write(memory, key, expected, value, fence))
    }

    fn set_fenced<'a>(
        &'a self,
        memory: &'a MemoryId,
        lock: &'a str,
        holder: &'a str,
        key: &'a str,
        value: Value,
    ) -> StoreFuture<'a, Written> {
        Box::pin(self.write(memory, key, Expect::Any, value, Some((lock, holder))))
    }

    fn remove<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let removed: i64 = self
                .run(
                    || format!("DEL of key `{key}`"),
                    redis::cmd("DEL")
                        .arg(value_key(memory, key))
                        .query_async(&mut connection),
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn contains<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let found: i64 = self
                .run(
                    || format!("EXISTS of key `{key}`"),
                    redis::cmd("EXISTS")
                        .arg(value_key(memory, key))
                        .query_async(&mut connection),
                )
                .await?;
            Ok(found > 0)
        })
    }

    fn keys<'a>(&'a self, memory: &'a MemoryId) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let prefix = format!("{}:value:", root(memory));
            let found = self.scan(&format!("{}*", glob_escape(&prefix))).await?;
            Ok(found
                .into_iter()
                .filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned))
                .collect())
        })
    }

    fn clear<'a>(&'a self, memory: &'a MemoryId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let root = root(memory);
            let mut doomed = self.scan(&format!("{}:value:*", glob_escape(&root))).await?;
            doomed.extend(self.scan(&format!("{}:lock:*", glob_escape(&root))).await?);
            doomed.push(format!("{root}:prepared"));
            doomed.push(format!("{root}:preparing"));
            self.delete(&doomed).await
        })
    }

    fn try_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move {
            let mut invocation = self.scripts.lock.key(lock_key(memory, name));
            invocation
                .key(fence_key(memory, name))
                .arg(holder)
                .arg(self.lease_millis());
            let mut connection = self.connection.clone();
            let token: u64 = self
                .run(
                    || format!("taking lock `{name}`"),
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            Ok((token > 0).then_some(Lease { fencing_token: token }))
        })
    }

    fn renew_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.scripts.renew.key(lock_key(memory, name));
            invocation.arg(holder).arg(self.lease_millis());
            let mut connection = self.connection.clone();
            let renewed: i64 = self
                .run(
                    || format!("renewing lock `{name}`"),
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            Ok(renewed > 0)
        })
    }

    fn unlock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.scripts.unlock.key(lock_key(memory, name));
            invocation.arg(holder);
            let mut connection = self.connection.clone();
            let released: i64 = self
                .run(
                    || format!("releasing lock `{name}`"),
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            Ok(released > 0)
        })
    }

    fn begin_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str) -> StoreFuture<'a, Preparation> {
        Box::pin(async move {
            let root = root(memory);
            let mut invocation = self.scripts.begin_preparation.key(format!("{root}:prepared"));
            invocation
                .key(format!("{root}:preparing"))
                .arg(holder)
                .arg(self.lease_millis());
            let mut connection = self.connection.clone();
            let state: i64 = self
                .run(
                    || "starting preparation".to_owned(),
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            Ok(match state {
                2 => Preparation::Prepared,
                1 => Preparation::Won,
                _ => Preparation::Busy,
            })
        })
    }

    fn renew_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.scripts.renew.key(format!("{}:preparing", root(memory)));
            invocation.arg(holder).arg(self.lease_millis());
            let mut connection = self.connection.clone();
            let renewed: i64 = self
                .run(
                    || "renewing the preparation lease".to_owned(),
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            Ok(renewed > 0)
        })
    }

    fn finish_preparation<'a>(&'a self, memory: &'a MemoryId, holder: &'a str, prepared: bool) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let root = root(memory);
            let mut invocation = self.scripts.finish_preparation.key(format!("{root}:prepared"));
            invocation
                .key(format!("{root}:preparing"))
                .arg(holder)
                .arg(if prepared { "1" } else { "0" });
            let mut connection = self.connection.clone();
            let _: i64 = self
                .run(
                    || "finishing preparation".to_owned(),
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_hidden() {
        assert_eq!(redact("redis://:secret@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
    }
}
