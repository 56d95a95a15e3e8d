//! Sharded replicas: several operators read the same source and split its resources between
//! them, each resource wholly in one replica.

use crate::api::error::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many buckets the hash space is cut into for `--shard auto`: bucket `b` holds the keys
/// whose [`stable_hash`] is in [`bucket_range(b)`](bucket_range), a contiguous range, the form a
/// server-side sharded watch takes (KEP-5866's `shardRange`).
pub const BUCKETS: usize = 256;

/// The bucket of a resource key: the top 8 bits of its [`stable_hash`].
///
/// ```
/// use memo_runtime::shard::{bucket_of, bucket_range, stable_hash};
///
/// let bucket = bucket_of("0b3b8ec0-1c3a-4f5e-9a55-1234567890ab");
/// assert!(bucket_range(bucket).contains(&stable_hash("0b3b8ec0-1c3a-4f5e-9a55-1234567890ab")));
/// ```
pub fn bucket_of(key: &str) -> usize {
    (stable_hash(key) >> 56) as usize
}

/// The hashes of bucket `bucket`: `[bucket << 56, (bucket + 1) << 56)`.
pub fn bucket_range(bucket: usize) -> std::ops::RangeInclusive<u64> {
    let start = (bucket as u64) << 56;
    start..=start | ((1u64 << 56) - 1)
}

/// The lease this replica holds on a resource's bucket with `--shard auto`, as the handler
/// parameter `fence: Option<Fence>` gives it (`None` without `--shard auto`).
///
/// Its [`token`](Fence::token) grows every time the bucket's lease changes hands, so a write
/// that carries it can be refused where a later owner has written already: the fencing token of
/// leases, for writes that may land late (a replica paused, a connection that delivers after a
/// partition heals).
///
/// ```
/// use memo_runtime::prelude::*;
/// use memo_runtime::shard::Fence;
///
/// #[handler(event = "Counter")]
/// async fn count(shared: &Shared, fence: Option<Fence>) -> memo_runtime::Result<()> {
///     let Some(fence) = fence else { return Ok(()) };
///     // Keep the largest token written per bucket; a write from an older holder changes nothing.
///     shared
///         .update(&format!("bucket-{}", fence.bucket()), |last: &mut u64| {
///             if fence.token() >= *last {
///                 *last = fence.token();
///             }
///         })
///         .await
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    bucket: usize,
    token: u64,
}

impl Fence {
    /// A fence for `bucket` at `token`: what a replica holding that lease would be given.
    pub fn new(bucket: usize, token: u64) -> Fence {
        Fence { bucket, token }
    }

    /// The bucket of the resource: see [`bucket_of`].
    pub fn bucket(&self) -> usize {
        self.bucket
    }

    /// The lease's fencing token: larger for every later holder of the same bucket's lease.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// The buckets a replica owns now, changed by its lease keeper and read on every event: a
/// bucket is owned while its bit is set and its deadline (a little before its lease can expire)
/// has not passed, so that a replica that was paused stops at once when it wakes up, before its
/// keeper can say so.
#[derive(Debug)]
pub(crate) struct Owned {
    bits: [AtomicU64; BUCKETS / 64],
    /// Per bucket, milliseconds since `epoch` until which it may be handled.
    deadlines: Vec<AtomicU64>,
    /// Per bucket, the fencing token of the lease held.
    tokens: Vec<AtomicU64>,
    epoch: std::time::Instant,
}

impl Default for Owned {
    fn default() -> Self {
        Owned {
            bits: Default::default(),
            deadlines: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            tokens: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            epoch: std::time::Instant::now(),
        }
    }
}

impl Owned {
    #[inline]
    pub(crate) fn owns_bucket(&self, bucket: usize) -> bool {
        self.bits[bucket / 64].load(Ordering::Acquire) & (1 << (bucket % 64)) != 0
            && self.millis() < self.deadlines[bucket].load(Ordering::Acquire)
    }

    /// Whether the keeper counts `bucket` as its own, deadline aside.
    pub(crate) fn marked(&self, bucket: usize) -> bool {
        self.bits[bucket / 64].load(Ordering::Acquire) & (1 << (bucket % 64)) != 0
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Until when `bucket` may be handled.
    pub(crate) fn hold_until(&self, bucket: usize, deadline: std::time::Instant) {
        let millis = u64::try_from(deadline.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        self.deadlines[bucket].store(millis, Ordering::Release);
    }

    /// Records the fencing token of the lease just acquired on `bucket`.
    pub(crate) fn set_token(&self, bucket: usize, token: u64) {
        self.tokens[bucket].store(token, Ordering::Release);
    }

    /// The fence of `bucket` while it is owned.
    pub(crate) fn fence(&self, bucket: usize) -> Option<Fence> {
        self.owns_bucket(bucket).then(|| Fence {
            bucket,
            token: self.tokens[bucket].load(Ordering::Acquire),
        })
    }

    pub(crate) fn set(&self, bucket: usize, owned: bool) {
        let bit = 1u64 << (bucket % 64);
        if owned {
            self.bits[bucket / 64].fetch_or(bit, Ordering::AcqRel);
        } else {
            self.bits[bucket / 64].fetch_and(!bit, Ordering::AcqRel);
        }
    }

    pub(crate) fn count(&self) -> usize {
        (0..BUCKETS).filter(|&bucket| self.owns_bucket(bucket)).count()
    }
}

/// The lease on a resource's bucket as a handler call is given it: its fence, and the keeper's
/// record to check it against again just before the handler starts (the runtime may have waited
/// on a store meanwhile, past the lease's deadline).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held<'a> {
    fence: Fence,
    owned: &'a Owned,
}

impl Held<'_> {
    pub(crate) fn fence(self) -> Fence {
        self.fence
    }

    /// Whether the lease is still this replica's, the same one (no later holder came between).
    #[inline]
    pub(crate) fn still_held(self) -> bool {
        self.owned.fence(self.fence.bucket) == Some(self.fence)
    }
}

/// Which resources this replica handles: a fixed share, or the buckets it holds leases on.
#[derive(Clone, Debug)]
pub(crate) enum Sharding {
    Static(Shard),
    Leased(Arc<Owned>),
}

impl Sharding {
    #[inline]
    pub(crate) fn owns(&self, key: &str) -> bool {
        match self {
            Sharding::Static(shard) => shard.owns(key),
            Sharding::Leased(owned) => owned.owns_bucket(bucket_of(key)),
        }
    }

    /// The lease held on `key`'s bucket, to be checked again when a handler starts; `None` for
    /// a fixed share, or a bucket not owned.
    #[inline]
    pub(crate) fn held(&self, key: &str) -> Option<Held<'_>> {
        match self {
            Sharding::Static(_) => None,
            Sharding::Leased(owned) => {
                let bucket = bucket_of(key);
                owned.fence(bucket).map(|fence| Held { fence, owned })
            }
        }
    }

    /// Whether what it owns changes while the operator runs: then every event is checked, not
    /// only a resource's first.
    #[inline]
    pub(crate) fn moves(&self) -> bool {
        matches!(self, Sharding::Leased(_))
    }
}

/// A stable 64-bit hash of a resource key: FNV-1a over its UTF-8 bytes.
///
/// Stable across processes, machines, platforms and memo versions (it is part of the contract of
/// [`Operator::shard`](crate::Operator::shard): replicas of different builds must agree), unlike
/// `std`'s randomly seeded hashers.
///
/// ```
/// assert_eq!(memo_runtime::shard::stable_hash(""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(memo_runtime::shard::stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn stable_hash(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.bytes()
        .fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// Which resources one replica handles: those whose key hashes to `index` modulo `count`.
///
/// A resource's key is its `metadata.uid`, or without one `KIND.GROUP/NAMESPACE/NAME` (group empty
/// for the core group, namespace empty for cluster-scoped objects).
///
/// ```
/// use memo_runtime::shard::Shard;
///
/// let shards: Vec<Shard> = (0..3).map(|index| Shard::new(index, 3).unwrap()).collect();
/// let owners = shards.iter().filter(|shard| shard.owns("0b3b8ec0-1c3a-4f5e-9a55-1234567890ab")).count();
/// assert_eq!(owners, 1);
/// assert!(Shard::new(3, 3).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
    /// `auto`: the share is leased from the other replicas (`--shard auto`).
    auto: bool,
}

impl Shard {
    /// Replica `index` of `count` (`index < count`).
    pub fn new(index: u64, count: u64) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::custom(format!(
                "shard {index}/{count} does not exist: the index counts from 0 and must be below the count (e.g. 0/3, 1/3, 2/3)"
            )));
        }
        Ok(Shard {
            index,
            count,
            auto: false,
        })
    }

    /// `--shard auto`: the replica joins the group of replicas with the same name and store, and
    /// owns the [`BUCKETS`] it holds leases on (see `Operator::shard_auto`).
    ///
    /// ```
    /// use memo_runtime::shard::Shard;
    /// assert!("auto".parse::<Shard>().unwrap().is_auto());
    /// ```
    pub fn auto() -> Shard {
        Shard {
            index: 0,
            count: 0,
            auto: true,
        }
    }

    /// Whether this is `--shard auto`.
    pub fn is_auto(&self) -> bool {
        self.auto
    }

    /// Parses `I/N`, as `--shard` and `MEMO_SHARD` take it.
    ///
    /// ```
    /// use memo_runtime::shard::Shard;
    /// assert_eq!("1/3".parse::<Shard>().unwrap(), Shard::new(1, 3).unwrap());
    /// assert!("3".parse::<Shard>().is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Shard> {
        if text.trim() == "auto" {
            return Ok(Shard::auto());
        }
        let parsed = text
            .trim()
            .split_once('/')
            .and_then(|(index, count)| Some((index.trim().parse().ok()?, count.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) => Shard::new(index, count),
            None => Err(Error::custom(format!(
                "`{text}` is not a shard: write INDEX/COUNT, e.g. 0/3, or `auto`"
            ))),
        }
    }

    /// This replica's index (0 for `auto`).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many replicas share the resources (0 for `auto`: as many as run).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether this replica handles the resource with this key.
    ///
    /// For `auto`, what the replica owns changes as it runs, and this says yes.
    pub fn owns(&self, key: &str) -> bool {
        self.auto || stable_hash(key) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Shard> {
        Shard::parse(text)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.auto {
            return f.write_str("auto");
        }
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(stable_hash("foobar"), 0x85944171f73967e8);
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn every_key_has_exactly_one_owner_and_the_split_is_even() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard::new(index, 3).unwrap()).collect();
        let mut counts = [0usize; 3];
        for n in 0..3000 {
            let key = format!("uid-{n}");
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(&key)).collect();
            assert_eq!(owners.len(), 1, "{key}");
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|&count| (800..1200).contains(&count)), "{counts:?}");
    }

    #[test]
    fn buckets_are_contiguous_ranges_of_the_hash() {
        assert_eq!(bucket_range(0), 0..=(1u64 << 56) - 1);
        assert_eq!(*bucket_range(BUCKETS - 1).end(), u64::MAX);
        for n in 0..1000 {
            let key = format!("uid-{n}");
            assert!(bucket_range(bucket_of(&key)).contains(&stable_hash(&key)));
        }
        let owned = Owned::default();
        let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
        owned.hold_until(70, later);
        owned.hold_until(255, later);
        owned.set(70, true);
        owned.set(255, true);
        owned.set(3, true);
        assert!(!owned.owns_bucket(3), "no deadline, not owned");
        assert!(owned.owns_bucket(70) && owned.owns_bucket(255) && !owned.owns_bucket(69));
        assert_eq!(owned.count(), 2);
        owned.set_token(70, 9);
        assert_eq!(owned.fence(70), Some(Fence::new(70, 9)));
        assert_eq!(owned.fence(3), None, "not owned: no fence");
        owned.set(70, false);
        assert_eq!(owned.count(), 1);
        assert_eq!(owned.fence(70), None);
    }

    #[test]
    fn bad_shards_say_what_is_expected() {
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::parse("2/2").unwrap_err().to_string().contains("below the count"));
        assert!(Shard::parse("a/b").unwrap_err().to_string().contains("INDEX/COUNT"));
    }
}
