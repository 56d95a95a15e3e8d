//! Writes whose outcome is known. A write whose reply is lost (a timeout, a dropped connection)
//! may still have been applied; callers read an error as "not written", so the store finds out
//! before it answers.
//!
//! Each write of a store carries the next number of that store, and sets that number's bit in a
//! bitmap of the store in the same step as it writes (a Lua script, or `MULTI`/`EXEC` for a plain
//! `set`); a write refused by its condition sets nothing. After a lost reply the store reads the
//! bit, and that answer is final because nothing the write sent can still arrive after it (see
//! `link.rs`): the question either goes down the same connection, behind the write, or kills the
//! old connection on the server first.
//!
//! Why a bitmap: one bit costs Redis one `SETBIT` inside the step it already runs (a key per
//! write with an expiry cost 170,000 scripts a second against 300,000; a hash field and its
//! deletion cost about 2.5 µs of a 5.8 µs script). The numbers are cut into generations of
//! [`GENERATION`] writes, a key each (8 KiB at most), which expire a while after their last
//! write: no write ever has to delete an old record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many writes' bits one key holds: 8 KiB of bitmap.
pub(super) const GENERATION: u64 = 1 << 16;

/// How long Redis keeps a generation at the least after its expiry was last pushed back: well
/// past the time a lost reply can be asked about (two timeouts).
const OP_TTL_FLOOR: Duration = Duration::from_secs(60);

/// Every how many writes the expiry of the current generation is pushed back.
const EXTEND_EVERY: u64 = 256;

/// The write numbers of one store, and the keys that record them.
pub(super) struct OpIds {
    prefix: String,
    next: AtomicU64,
    /// When the last extension was sent, in milliseconds since `born`: after a quiet spell the
    /// next write extends, whatever its number, so that a generation never lives unextended.
    extended: AtomicU64,
    born: Instant,
    ttl: Duration,
}

/// One write's number, as it is sent.
pub(super) struct Op {
    /// The key of its generation.
    pub(super) key: String,
    /// Its bit in that key.
    pub(super) bit: u64,
    /// Whether this write pushes its generation's expiry back.
    pub(super) extend: bool,
}

impl OpIds {
    /// The numbers of a store whose calls time out after `timeout`.
    pub(super) fn new(timeout: Duration) -> Self {
        OpIds {
            prefix: format!("memo:ops:{}", crate::store::new_token()),
            next: AtomicU64::new(0),
            extended: AtomicU64::new(0),
            born: Instant::now(),
            ttl: OP_TTL_FLOOR.max(timeout.saturating_mul(20)),
        }
    }

    /// How long a generation is kept after its last extension, in milliseconds.
    pub(super) fn ttl_millis(&self) -> u64 {
        self.ttl.as_millis().try_into().unwrap_or(u64::MAX)
    }

    /// The number of the next write.
    pub(super) fn next(&self) -> Op {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let quiet = now.saturating_sub(self.extended.load(Ordering::Relaxed)) >= self.ttl_millis() / 4;
        let extend = number.is_multiple_of(EXTEND_EVERY) || quiet;
        if extend {
            self.extended.store(now, Ordering::Relaxed);
        }
        Op {
            key: format!("{}:{}", self.prefix, number / GENERATION),
            bit: number % GENERATION,
            extend,
        }
    }
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
    fn numbers_follow_each_other_in_generations_of_bits() {
        let ids = OpIds::new(Duration::from_secs(3));
        let first = ids.next();
        assert_eq!((first.bit, first.extend), (0, true));
        assert!(first.key.starts_with("memo:ops:") && first.key.ends_with(":0"));
        let second = ids.next();
        assert_eq!((second.bit, second.extend), (1, false));
        assert_eq!(second.key, first.key);
        assert_ne!(OpIds::new(Duration::from_secs(3)).next().key, first.key);
        ids.next.store(GENERATION + 5, Ordering::Relaxed);
        let later = ids.next();
        assert_eq!(later.bit, 5);
        assert!(later.key.ends_with(":1"));
        ids.next.store(3 * EXTEND_EVERY, Ordering::Relaxed);
        assert!(ids.next().extend);
    }

    #[test]
    fn a_write_after_a_quiet_spell_extends() {
        let ids = OpIds::new(Duration::from_secs(3));
        ids.next();
        assert!(!ids.next().extend);
        ids.extended.store(0, Ordering::Relaxed);
        let ids = OpIds {
            born: Instant::now() - Duration::from_secs(30),
            ..ids
        };
        assert!(ids.next().extend, "15 s without an extension: the next write extends");
    }

    #[test]
    fn records_outlive_the_wait_for_a_reply() {
        assert_eq!(OpIds::new(Duration::from_secs(3)).ttl_millis(), 60_000);
        assert_eq!(OpIds::new(Duration::from_secs(10)).ttl_millis(), 200_000);
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
