//! Writes whose outcome is known. A write whose reply is lost (a timeout, a dropped connection)
//! may still have been applied; callers read an error as "not written", so the store finds out
//! before it answers. Each write of a store carries the next number of that store, which its
//! script records atomically with the write, in one hash per store (`memo:ops:{store}`); after a
//! lost reply the store asks whether that number was recorded, and the same step records it as
//! aborted if not, so that the write, should it still arrive (on a connection Redis has not read
//! to the end yet), does nothing.
//!
//! A key per write would cost Redis a key with an expiry per write (measured: 170,000 scripts a
//! second against 300,000 without); fields of one small hash cost little. The hash keeps the last
//! [`WINDOW`] numbers: each write drops the record `WINDOW` numbers back. An answer is only
//! trusted while the record cannot have been dropped (fewer than `WINDOW` writes of the store
//! since): a lost reply is asked about at once, while at most one write per caller is in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many of a store's latest writes are remembered.
pub(super) const WINDOW: u64 = 1 << 10;

/// How long Redis keeps a store's records at the least after its last write: well past the time a
/// write's reply can be waited for, so that a late write still finds its number aborted.
const OP_TTL_FLOOR: Duration = Duration::from_secs(60);

/// Every how many writes the records' expiry is pushed back.
const EXTEND_EVERY: u64 = 256;

/// The write numbers of one store, and the key that records them.
pub(super) struct OpIds {
    key: String,
    next: AtomicU64,
}

/// One write's number, as its script takes it.
pub(super) struct Op {
    pub(super) number: u64,
    /// The record this write drops, if any.
    pub(super) dropped: Option<u64>,
    /// Whether this write extends the records' expiry.
    pub(super) extend: bool,
}

impl OpIds {
    pub(super) fn new() -> Self {
        OpIds {
            key: format!("memo:ops:{}", crate::store::new_token()),
            next: AtomicU64::new(0),
        }
    }

    /// The hash that records the writes.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// The number of the next write.
    pub(super) fn next(&self) -> Op {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        Op {
            number,
            dropped: number.checked_sub(WINDOW),
            extend: number.is_multiple_of(EXTEND_EVERY),
        }
    }

    /// Whether the record of write `number` can no longer have been dropped: fewer than
    /// [`WINDOW`] writes have been numbered since.
    pub(super) fn still_recorded(&self, number: u64) -> bool {
        self.next.load(Ordering::Relaxed) < number.saturating_add(WINDOW)
    }
}

/// How long the records are kept, in milliseconds, for a store whose calls time out after
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
    fn numbers_follow_each_other_and_drop_the_record_a_window_back() {
        let ids = OpIds::new();
        let first = ids.next();
        assert_eq!((first.number, first.dropped, first.extend), (0, None, true));
        let second = ids.next();
        assert_eq!((second.number, second.dropped, second.extend), (1, None, false));
        assert!(ids.key().starts_with("memo:ops:"));
        assert_ne!(OpIds::new().key(), ids.key());
        ids.next.store(WINDOW + 5, Ordering::Relaxed);
        assert_eq!(ids.next().dropped, Some(5));
        assert!(!ids.still_recorded(5));
        assert!(ids.still_recorded(7));
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
