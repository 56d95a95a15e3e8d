//! The store's connection to Redis, and what makes a late write impossible.
//!
//! One multiplexed connection, replaced when it fails. Each connection knows how the server
//! names it (`CLIENT INFO`: its id and address), because a write whose reply was lost may still
//! sit unread in the server's socket buffer: asked on the same connection, the question is read
//! after the write (one connection's commands run in order); asked on a new one, the question
//! first kills the old connection on the server, and with it anything unread, so that the
//! answer stays true. redis-rs' `ConnectionManager` hides which connection a command went down,
//! so the store keeps its own.

use arc_swap::ArcSwap;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one connection attempt may take.
const CONNECT_ATTEMPT: Duration = Duration::from_secs(1);

/// One connection, as the server knows it.
pub(super) struct Conn {
    pub(super) connection: MultiplexedConnection,
    /// `ID id ADDR addr` filters of `CLIENT KILL`; `None` if the server would not say.
    identity: Option<(u64, String)>,
    /// Set when a command on it failed in a way that needs a new connection.
    broken: AtomicBool,
}

impl Conn {
    /// Whether the connection should be replaced before its next command.
    pub(super) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }
}

/// The current connection, replaced by the first caller that finds it broken.
pub(super) struct Link {
    client: redis::Client,
    current: ArcSwap<Conn>,
    replacing: tokio::sync::Mutex<()>,
}

/// Why no connection could be had.
pub(super) struct NoConnection(pub(super) String);

impl Link {
    /// Connects, giving up after `timeout`.
    pub(super) async fn connect(client: redis::Client, timeout: Duration) -> Result<Link, NoConnection> {
        let conn = open_until(&client, Instant::now() + timeout).await?;
        Ok(Link {
            client,
            current: ArcSwap::from_pointee(conn),
            replacing: tokio::sync::Mutex::new(()),
        })
    }

    /// The connection to send on: the current one, or a new one if it broke (within `deadline`).
    pub(super) async fn get(&self, deadline: Instant) -> Result<Arc<Conn>, NoConnection> {
        let current = self.current.load_full();
        if !current.broken.load(Ordering::Relaxed) {
            return Ok(current);
        }
        let Ok(_only_one) = tokio::time::timeout_at(deadline.into(), self.replacing.lock()).await else {
            return Err(NoConnection("no new connection in time".to_owned()));
        };
        let current = self.current.load_full();
        if !current.broken.load(Ordering::Relaxed) {
            return Ok(current);
        }
        let fresh = Arc::new(open_until(&self.client, deadline).await?);
        self.current.store(fresh.clone());
        tracing::debug!(target: "memo", "reconnected to Redis");
        Ok(fresh)
    }

    /// A pipeline that, sent on `now`, is read after everything sent on `then`: nothing when they
    /// are the same connection; else `CLIENT KILL` of `then`. `None` when that cannot be made
    /// sure (the server did not say how it names `then`).
    pub(super) fn fence_after(then: &Arc<Conn>, now: &Arc<Conn>) -> Option<redis::Pipeline> {
        let mut pipe = redis::pipe();
        if !Arc::ptr_eq(then, now) {
            let (id, addr) = then.identity.as_ref()?;
            // The filter form answers a count, 0 when the connection is gone already (and then
            // the server has read all it will ever read from it).
            pipe.cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(*id)
                .arg("ADDR")
                .arg(addr)
                .ignore();
        }
        Some(pipe)
    }
}

/// Opens a connection, tried again while the server cannot be reached, until `deadline`; a
/// failure names the last reason.
async fn open_until(client: &redis::Client, deadline: Instant) -> Result<Conn, NoConnection> {
    let mut delay = Duration::from_millis(10);
    loop {
        let reason = match tokio::time::timeout_at(deadline.into(), open(client)).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(Attempt::Final(reason))) => return Err(NoConnection(reason)),
            Ok(Err(Attempt::Again(reason))) => reason,
            Err(_) => return Err(NoConnection("no answer in time".to_owned())),
        };
        if Instant::now() + delay >= deadline {
            return Err(NoConnection(reason));
        }
        tracing::debug!(target: "memo", "cannot connect to Redis yet: {reason}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// How one connection attempt failed.
enum Attempt {
    /// The server could not be reached: worth another try.
    Again(String),
    /// It answered no (a password, a URL it does not accept).
    Final(String),
}

/// Opens a connection and asks the server how it names it. A server that does not answer
/// `CLIENT INFO` (too old, or an ACL that denies it) is asked `PING` instead: either round trip
/// needs the password, so a missing one shows now.
async fn open(client: &redis::Client) -> Result<Conn, Attempt> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_ATTEMPT))
        .set_response_timeout(None);
    let classify = |err: redis::RedisError| {
        if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
            Attempt::Again(err.to_string())
        } else {
            Attempt::Final(err.to_string())
        }
    };
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(classify)?;
    let identity = match redis::cmd("CLIENT")
        .arg("INFO")
        .query_async::<String>(&mut connection)
        .await
    {
        Ok(info) => parse_identity(&info),
        Err(err) if is_refusal(&err) => return Err(Attempt::Final(err.to_string())),
        Err(err) if err.is_io_error() || err.is_connection_dropped() => return Err(classify(err)),
        Err(_) => {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map_err(classify)?;
            None
        }
    };
    Ok(Conn {
        connection,
        identity,
        broken: AtomicBool::new(false),
    })
}

/// A password wanted or refused.
fn is_refusal(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::AuthenticationFailed
        || err.code().is_some_and(|code| code == "NOAUTH" || code == "WRONGPASS")
}

/// The `id` and `addr` fields of a `CLIENT INFO` line.
fn parse_identity(info: &str) -> Option<(u64, String)> {
    let field = |name: &str| {
        info.split_ascii_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    Some((field("id")?.parse().ok()?, field("addr")?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_identity;

    #[test]
    fn identity_is_read_from_client_info() {
        let info = "id=7 addr=127.0.0.1:51234 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=N db=0\n";
        assert_eq!(parse_identity(info), Some((7, "127.0.0.1:51234".to_owned())));
        assert_eq!(parse_identity("laddr=1 fd=8"), None);
        assert_eq!(parse_identity("id=x addr=a"), None);
    }
}
