//! Shared memory in Redis: every process of a bot, on any machine, sees the same memories.
//!
//! Every conditional step (compare-and-set, fenced write, lock acquisition with its fencing token,
//! renewal, release, preparation) is one Lua script, so Redis runs it atomically: nothing relies
//! on `WATCH`, which a multiplexed connection cannot isolate per caller.

mod keys;
mod link;
mod outcome;
mod redact;
mod scripts;

use super::{Lease, MemoryId, Preparation, Store, StoreFuture, Version, Versioned, Written};
use crate::api::error::{Error, Result};
use keys::{fence_key, glob_escape, lock_key, root, value_key};
use link::{Conn, Link, NoConnection};
use outcome::{Op, OpIds, may_have_applied};
pub(crate) use redact::redact;
use redis::aio::MultiplexedConnection;
use scripts::Scripts;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long [`RedisStore::connect`] tries before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one store operation may take (all its retries included) before it fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// A [`Store`] in Redis (feature `redis`): shared memory that every process and machine of a bot
/// sees, and that outlives them. Cloning it shares the connection.
///
/// One multiplexed connection per store, replaced when lost: while Redis is
/// unreachable each call fails within 3 seconds (see [`RedisStore::with_timeout`]) with
/// [`Error::Store`], and calls succeed again once it is back.
///
/// A write's outcome is known: when its reply is lost (a timeout, a dropped connection), the
/// store asks Redis, for up to another timeout, whether the write was applied, and answers
/// accordingly; only if Redis cannot be asked in that time does the write fail with
/// [`Error::OutcomeUnknown`] (see [`Error::is_outcome_unknown`]). Every other failed write wrote
/// nothing.
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
/// Besides, each store (each `connect`) records its writes in bitmaps,
/// `memo:ops:{random}:{generation}`: bit `n` of generation `g` is set once write
/// `g × 65,536 + n` is applied. A generation expires a minute (or 20 timeouts) after its last write.
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
    link: Arc<Link>,
    lease: Duration,
    timeout: Duration,
    scripts: Arc<Scripts>,
    ops: Arc<OpIds>,
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
        // The first round trip needs the password, if the server wants one: a missing one
        // (NOAUTH) shows now, not at the first handler.
        let link = Link::connect(client, CONNECT_TIMEOUT)
            .await
            .map_err(|NoConnection(why)| Error::Store(format!("cannot connect to Redis at `{shown}`: {why}")))?;
        tracing::info!(target: "memo", url = &*shown, "connected to Redis at {shown}");
        Ok(RedisStore {
            url: shown,
            link: Arc::new(link),
            lease: super::DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
            scripts: Arc::new(Scripts::new()),
            ops: Arc::new(OpIds::new(DEFAULT_TIMEOUT)),
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
    /// past it, the call fails with [`Error::Store`]. A write whose reply was lost then spends up
    /// to another `timeout` finding out whether it was applied (see [`Error::OutcomeUnknown`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.ops = Arc::new(OpIds::new(timeout));
        self
    }

    /// The URL connected to, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one Redis round trip within the timeout; a failure names the URL and the operation.
    async fn run<T, Call, Reply>(&self, what: impl Fn() -> String, call: Call) -> Result<T>
    where
        Call: FnOnce(MultiplexedConnection) -> Reply,
        Reply: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + self.timeout;
        let conn =
            self.link.get(deadline).await.map_err(|NoConnection(why)| {
                Error::Store(format!("Redis at `{}`: {} failed: {why}", self.url, what()))
            })?;
        match tokio::time::timeout_at(deadline.into(), call(conn.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                if needs_new_connection(&err) {
                    conn.mark_broken();
                }
                Err(Error::Store(format!(
                    "Redis at `{}`: {} failed: {err}",
                    self.url,
                    what()
                )))
            }
            Err(_) => {
                conn.mark_broken();
                Err(Error::Store(format!(
                    "Redis at `{}`: {} got no answer within {:?}",
                    self.url,
                    what(),
                    self.timeout
                )))
            }
        }
    }

    fn lease_millis(&self) -> u64 {
        self.lease.as_millis().try_into().unwrap_or(u64::MAX)
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .run(
                    || format!("SCAN of `{pattern}`"),
                    |mut connection| async move {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut connection)
                            .await
                    },
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
            let _: i64 = self
                .run(
                    || "UNLINK".to_owned(),
                    |mut connection| async move { redis::cmd("UNLINK").arg(batch).query_async(&mut connection).await },
                )
                .await?;
        }
        Ok(())
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

/// Whether a command that failed with `err` leaves its connection unusable.
fn needs_new_connection(err: &redis::RedisError) -> bool {
    err.is_unrecoverable_error() || err.is_io_error() || err.is_connection_dropped()
}

impl RedisStore {
    /// A write whose outcome is known unless Redis cannot be asked (see `outcome.rs`): a plain
    /// `set` is `SET` and its record in one transaction, every conditional write the `write`
    /// script. A write found not applied is sent again, with a new number, while time is left.
    async fn write(
        &self,
        memory: &MemoryId,
        key: &str,
        expected: Expect<'_>,
        value: Value,
        fence: Option<(&str, &str)>,
    ) -> Result<Written> {
        let text = value.to_string();
        let value_key = value_key(memory, key);
        let (lock_key, holder) = match fence {
            Some((lock, holder)) => (Some(lock_key(memory, lock)), holder),
            None => (None, ""),
        };
        let (mode, expected) = match expected {
            Expect::Any => ("any", ""),
            Expect::Absent => ("absent", ""),
            Expect::Equals(version) => ("equals", version.as_str()),
        };
        let plain = mode == "any" && lock_key.is_none();
        let ttl = self.ops.ttl_millis();
        let deadline = Instant::now() + self.timeout;
        loop {
            let conn = self.link.get(deadline).await.map_err(|NoConnection(why)| {
                Error::Store(format!(
                    "Redis at `{}`: write of key `{key}` failed: {why}; nothing was written",
                    self.url
                ))
            })?;
            let op = self.ops.next();
            let mut connection = conn.connection.clone();
            let sent = async {
                if plain {
                    let mut transaction = redis::pipe();
                    transaction.atomic();
                    transaction.cmd("SET").arg(&value_key).arg(&text).ignore();
                    transaction.cmd("SETBIT").arg(&op.key).arg(op.bit).arg(1).ignore();
                    if op.extend {
                        transaction.cmd("PEXPIRE").arg(&op.key).arg(ttl).ignore();
                    }
                    transaction.query_async::<()>(&mut connection).await?;
                    Ok(None)
                } else {
                    let mut invocation = self.scripts.write.key(&value_key);
                    invocation.key(&op.key);
                    if let Some(lock_key) = &lock_key {
                        invocation.key(lock_key);
                    }
                    invocation
                        .arg(mode)
                        .arg(expected)
                        .arg(&text)
                        .arg(holder)
                        .arg(ttl)
                        .arg(op.bit)
                        .arg(if op.extend { "1" } else { "0" });
                    invocation.invoke_async::<Vec<String>>(&mut connection).await.map(Some)
                }
            };
            let lost = match tokio::time::timeout_at(deadline.into(), sent).await {
                Ok(Ok(None)) => return Ok(Written::Done(Version::new(text))),
                Ok(Ok(Some(reply))) => return self.written(key, text, reply),
                Ok(Err(err)) if !may_have_applied(&err) => {
                    if needs_new_connection(&err) {
                        conn.mark_broken();
                    }
                    return Err(Error::Store(format!(
                        "Redis at `{}`: write of key `{key}` failed: {err}; nothing was written",
                        self.url
                    )));
                }
                Ok(Err(err)) => {
                    if needs_new_connection(&err) {
                        conn.mark_broken();
                    }
                    err.to_string()
                }
                Err(_) => {
                    conn.mark_broken();
                    format!("got no answer within {:?}", self.timeout)
                }
            };
            if self.settle(&op, &conn, key, &lost).await? {
                return Ok(Written::Done(Version::new(text)));
            }
            if Instant::now() >= deadline {
                return Err(Error::Store(format!(
                    "Redis at `{}`: write of key `{key}` {lost}; nothing was written",
                    self.url
                )));
            }
        }
    }

    /// Whether write `op`, sent on `sent_on` and whose reply was lost, was applied; asked until
    /// the answer comes or another timeout has passed. The question is read after anything the
    /// write sent (see `link.rs`), so a "no" stays true.
    async fn settle(&self, op: &Op, sent_on: &Arc<Conn>, key: &str, lost: &str) -> Result<bool> {
        tracing::debug!(target: "memo", key, "write of key `{key}` {lost}: asking Redis whether it was applied");
        let unknown = |why: String| {
            Error::OutcomeUnknown(format!(
                "Redis at `{}`: write of key `{key}` {lost}, and {why}",
                self.url
            ))
        };
        let deadline = Instant::now() + self.timeout;
        let mut backoff = super::backoff::Backoff::new(Duration::from_millis(10), Duration::from_millis(250));
        loop {
            if Instant::now() >= deadline {
                return Err(unknown(format!(
                    "Redis could not be asked within {:?} whether it was applied",
                    self.timeout
                )));
            }
            let Ok(conn) = self.link.get(deadline).await else {
                continue;
            };
            let Some(mut question) = Link::fence_after(sent_on, &conn) else {
                return Err(unknown(
                    "the server does not say how it names connections, so the question could overtake it".to_owned(),
                ));
            };
            question.cmd("GETBIT").arg(&op.key).arg(op.bit);
            let mut connection = conn.connection.clone();
            match tokio::time::timeout_at(deadline.into(), question.query_async::<(u8,)>(&mut connection)).await {
                Ok(Ok((bit,))) => return Ok(bit == 1),
                Ok(Err(err)) => {
                    if needs_new_connection(&err) {
                        conn.mark_broken();
                    }
                    backoff.wait().await;
                }
                Err(_) => conn.mark_broken(),
            }
        }
    }

    /// What the `write` script replied.
    fn written(&self, key: &str, text: String, reply: Vec<String>) -> Result<Written> {
        let mut reply = reply.into_iter();
        match reply.next().as_deref() {
            Some("done") => Ok(Written::Done(Version::new(text))),
            Some("lost") => Ok(Written::LeaseLost),
            Some("changed") => Ok(Written::Changed(reply.next().map(|now| parse(key, now)).transpose()?)),
            other => Err(Error::Store(format!(
                "Redis at `{}`: unexpected reply {other:?} to a write of key `{key}`; nothing was written",
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
            let text: Option<String> = self
                .run(
                    || format!("GET of key `{key}`"),
                    |mut connection| async move {
                        redis::cmd("GET")
                            .arg(value_key(memory, key))
                            .query_async(&mut connection)
                            .await
                    },
                )
                .await?;
            text.map(|text| parse(key, text)).transpose()
        })
    }

    fn set<'a>(&'a self, memory: &'a MemoryId, key: &'a str, value: Value) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match self.write(memory, key, Expect::Any, value, None).await? {
                Written::Done(_) => Ok(()),
                other => Err(Error::Store(format!(
                    "Redis at `{}`: unexpected outcome {other:?} of a SET of key `{key}`",
                    self.url
                ))),
            }
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
            let removed: i64 = self
                .run(
                    || format!("DEL of key `{key}`"),
                    |mut connection| async move {
                        redis::cmd("DEL")
                            .arg(value_key(memory, key))
                            .query_async(&mut connection)
                            .await
                    },
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn contains<'a>(&'a self, memory: &'a MemoryId, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let found: i64 = self
                .run(
                    || format!("EXISTS of key `{key}`"),
                    |mut connection| async move {
                        redis::cmd("EXISTS")
                            .arg(value_key(memory, key))
                            .query_async(&mut connection)
                            .await
                    },
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
            let token: u64 = self
                .run(
                    || format!("taking lock `{name}`"),
                    |mut connection| async move { invocation.invoke_async(&mut connection).await },
                )
                .await?;
            Ok((token > 0).then_some(Lease { fencing_token: token }))
        })
    }

    fn renew_lock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.scripts.renew.key(lock_key(memory, name));
            invocation.arg(holder).arg(self.lease_millis());
            let renewed: i64 = self
                .run(
                    || format!("renewing lock `{name}`"),
                    |mut connection| async move { invocation.invoke_async(&mut connection).await },
                )
                .await?;
            Ok(renewed > 0)
        })
    }

    fn unlock<'a>(&'a self, memory: &'a MemoryId, name: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.scripts.unlock.key(lock_key(memory, name));
            invocation.arg(holder);
            let released: i64 = self
                .run(
                    || format!("releasing lock `{name}`"),
                    |mut connection| async move { invocation.invoke_async(&mut connection).await },
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
            let state: i64 = self
                .run(
                    || "starting preparation".to_owned(),
                    |mut connection| async move { invocation.invoke_async(&mut connection).await },
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
            let renewed: i64 = self
                .run(
                    || "renewing the preparation lease".to_owned(),
                    |mut connection| async move { invocation.invoke_async(&mut connection).await },
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
            let _: i64 = self
                .run(
                    || "finishing preparation".to_owned(),
                    |mut connection| async move { invocation.invoke_async(&mut connection).await },
                )
                .await?;
            Ok(())
        })
    }
}
