//! Writes whose outcome is known. A write whose reply is lost (a timeout, a dropped connection)
//! may still have been applied; callers read an error as "not written", so the store finds out
//! before it answers. Each write carries an operation id that its script records atomically with
//! the write; after a lost reply the store asks whether that id was recorded, and the same step
//! records it as aborted if not, so that the write, should it still arrive (on a connection
//! Redis has not read to the end yet), does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long Redis keeps an operation id at the least: well past the time a write's reply can be
/// waited for, so that a late write still finds its id aborted.
const OP_TTL_FLOOR: Duration = Duration::from_secs(60);

/// Operation ids unique across processes: a random prefix per store, then a counter.
pub(super) struct OpIds {
    prefix: String,
    next: AtomicU64,
}

impl OpIds {
    pub(super) fn new() -> Self {
        OpIds {
            prefix: crate::store::new_token(),
            next: AtomicU64::new(0),
        }
    }

    /// The id of the next write.
    pub(super) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.prefix.len() + 12);
        id.push_str(&self.prefix);
        id.push('-');
        id.push_str(&n.to_string());
        id
    }
}

/// How long an operation id is kept, in milliseconds, for a store whose calls time out after
/// `timeout`.
pub(super) fn op_ttl_millis(timeout: Duration) -> u64 {
    let ttl = OP_TTL_FLOOR.max(timeout.saturating_mul(20));
    ttl.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Whether a round trip that failed with `err` may have reached Redis and run there. A reply
/// from the server (an error it sent) or a refused connection means it did not; a lost
/// connection or a reply that did not come in time leaves it open.
pub(super) fn may_have_applied(err: &redis::RedisError) -> bool {
    use redis::ErrorKind;
    if err.is_connection_refusal() {
        return false;
    }
    !matches!(
        err.kind(),
        ErrorKind::Server(_)
            | ErrorKind::Extension
            | ErrorKind::AuthenticationFailed
            | ErrorKind::InvalidClientConfig
            | ErrorKind::RESP3NotSupported
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_share_the_store_prefix() {
        let ids = OpIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(a[..32], b[..32]);
        assert_ne!(OpIds::new().next()[..32], a[..32]);
    }

    #[test]
    fn ids_outlive_the_wait_for_a_reply() {
        assert_eq!(op_ttl_millis(Duration::from_secs(3)), 60_000);
        assert_eq!(op_ttl_millis(Duration::from_secs(10)), 200_000);
    }

    #[test]
    fn only_lost_replies_leave_the_outcome_open() {
        let io = |kind| redis::RedisError::from(std::io::Error::new(kind, "x"));
        assert!(may_have_applied(&io(std::io::ErrorKind::TimedOut)));
        assert!(may_have_applied(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(!may_have_applied(&io(std::io::ErrorKind::ConnectionRefused)));
        let refused = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "no"));
        assert!(!may_have_applied(&refused));
    }
}
