//! Random holder tokens, without a random-number crate: std's `RandomState` is seeded from the
//! operating system's randomness once per process, and the time, the process id and a counter
//! make every token of a process differ.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new random token (32 hex digits) naming one lock holder or preparation attempt: two calls,
/// in one process or in two, practically never return the same token.
///
/// ```
/// let (a, b) = (memo_runtime::store::new_token(), memo_runtime::store::new_token());
/// assert_ne!(a, b);
/// assert_eq!(a.len(), 32);
/// ```
pub fn new_token() -> String {
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let half = |salt: u64| {
        // A fresh `RandomState` has new keys: each half gets its own.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.write_u64(count);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

/// A random number in `0..bound` (`bound` > 0), for jitter.
pub(crate) fn jitter(bound: u64) -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish() % bound.max(1)
}
