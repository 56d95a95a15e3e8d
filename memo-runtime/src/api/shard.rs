//! Sharded replicas: several operators read the same source and split its resources between
//! them, each resource wholly in one replica.

use crate::api::error::{Error, Result};

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
}

impl Shard {
    /// Replica `index` of `count` (`index < count`).
    pub fn new(index: u64, count: u64) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::custom(format!(
                "shard {index}/{count} does not exist: the index counts from 0 and must be below the count (e.g. 0/3, 1/3, 2/3)"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`, as `--shard` and `MEMO_SHARD` take it.
    ///
    /// ```
    /// use memo_runtime::shard::Shard;
    /// assert_eq!("1/3".parse::<Shard>().unwrap(), Shard::new(1, 3).unwrap());
    /// assert!("3".parse::<Shard>().is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Shard> {
        let parsed = text
            .trim()
            .split_once('/')
            .and_then(|(index, count)| Some((index.trim().parse().ok()?, count.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) => Shard::new(index, count),
            None => Err(Error::custom(format!(
                "`{text}` is not a shard: write INDEX/COUNT, e.g. 0/3"
            ))),
        }
    }

    /// This replica's index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many replicas share the resources.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether this replica handles the resource with this key.
    pub fn owns(&self, key: &str) -> bool {
        stable_hash(key) % self.count == self.index
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
    fn bad_shards_say_what_is_expected() {
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::parse("2/2").unwrap_err().to_string().contains("below the count"));
        assert!(Shard::parse("a/b").unwrap_err().to_string().contains("INDEX/COUNT"));
    }
}
