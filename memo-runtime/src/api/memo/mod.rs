//! The [`Memo`] type: a container of runtime-only values shared by all the
//! handlers of one resource, modelled on kopf's `memo`.
//!
//! # Design
//!
//! A memo is an overlay chain of immutable-once-shared layers:
//!
//! * [`Memo`] is one optional pointer to its top layer; an empty memo
//!   allocates nothing.
//! * A layer holds a few entries (key and slot) and a pointer to its parent
//!   layer. A slot is either a value (`Arc<dyn Value>`) or a tombstone that
//!   hides a key of a parent layer.
//! * Cloning a memo clones one `Arc`: O(1) whatever the number of keys.
//! * Writing into a memo whose top layer is shared (with a clone, or with the
//!   memo it was cloned from) first pushes a fresh empty layer over it, so the
//!   other memos never see the write.
//! * Lookups walk the chain from the top. Layers search linearly while small
//!   and switch to a hash map above `SMALL_MAX` entries.
//! * When a chain grows deeper than `MAX_DEPTH`, its upper layers are merged
//!   into one (small layers first, so that a big shared base layer such as an
//!   operator memo is kept shared rather than copied).

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

mod layer;
#[cfg(test)]
mod tests;

use layer::*;

// ---------------------------------------------------------------------------
// Memo
// ---------------------------------------------------------------------------

/// A container of runtime-only values of any type, under string keys.
///
/// Every resource has a memo shared by all its handlers. A resource memo
/// starts as a [clone](Memo::clone) of the operator memo: the values are
/// shared, but keys inserted or removed later in one memo do not show in the
/// other. Values can be anything `Send + Sync + 'static`: counters, flags,
/// `Arc<Mutex<_>>`, channel senders, thread handles.
///
/// Cloning is O(1) whatever the number of keys, and an empty memo allocates
/// nothing.
///
/// ```
/// use memo_runtime::Memo;
///
/// let mut memo = Memo::new();
/// memo.insert("counter", 1u64);
/// memo.insert("seen", true);
/// *memo.get_mut::<u64>("counter").unwrap() += 1;
/// assert_eq!(memo.get::<u64>("counter"), Some(&2));
/// assert_eq!(memo.get::<bool>("seen"), Some(&true));
/// ```
pub struct Memo {
    top: Option<Arc<Layer>>,
}

impl Memo {
    /// Creates an empty memo. It allocates nothing until the first insert.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let memo = Memo::new();
    /// assert!(memo.is_empty());
    /// ```
    pub const fn new() -> Memo {
        Memo { top: None }
    }

    /// Stores `value` under `key`, replacing any previous value of any type.
    ///
    /// A string literal key is not copied to the heap. Memos cloned from this
    /// one, or this one was cloned from, do not see the change.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("counter", 1u64);
    /// memo.insert(format!("worker-{}", 7), "idle");
    /// memo.insert("counter", "replaced by a string");
    /// assert_eq!(memo.get::<&str>("counter"), Some(&"replaced by a string"));
    /// assert_eq!(memo.get::<&str>("worker-7"), Some(&"idle"));
    /// ```
    pub fn insert<T: Send + Sync + 'static>(&mut self, key: impl Into<Cow<'static, str>>, value: T) {
        let key = Key::from(key.into());
        self.top_mut().set(key, Arc::new(value));
    }

    /// Returns the value under `key`, or `None` if there is none or it is not
    /// a `T`.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("counter", 5u64);
    /// assert_eq!(memo.get::<u64>("counter"), Some(&5));
    /// assert_eq!(memo.get::<u32>("counter"), None);
    /// assert_eq!(memo.get::<u64>("missing"), None);
    /// ```
    pub fn get<T: 'static>(&self, key: &str) -> Option<&T> {
        lookup(self.top.as_deref(), key).and_then(|(_, value)| downcast_ref(value))
    }

    /// Returns the value under `key`, telling a missing key apart from a value
    /// of another type.
    ///
    /// ```
    /// use memo_runtime::{Memo, MemoError};
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("counter", 5u64);
    /// assert_eq!(memo.try_get::<u64>("counter"), Ok(&5));
    /// assert_eq!(
    ///     memo.try_get::<u64>("nope"),
    ///     Err(MemoError::Missing { key: "nope".to_owned() }),
    /// );
    /// let err = memo.try_get::<String>("counter").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "the value under key `counter` is a `u64`, not a `alloc::string::String`",
    /// );
    /// ```
    pub fn try_get<T: 'static>(&self, key: &str) -> Result<&T, MemoError> {
        let (_, value) = lookup(self.top.as_deref(), key).ok_or_else(|| MemoError::Missing { key: key.to_owned() })?;
        downcast_ref(value).ok_or_else(|| MemoError::TypeMismatch {
            key: key.to_owned(),
            expected: type_name::<T>(),
            found: type_name_of(value),
        })
    }

    /// Returns the value under `key` for mutation, or `None` if there is none
    /// or it is not a `T`.
    ///
    /// Copy-on-write: if the value is still shared with another memo (the one
    /// this memo was cloned from, or a clone of this one), it is first cloned
    /// into this memo, so the other memo never sees the change. A value this
    /// memo alone holds is mutated in place.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut operator = Memo::new();
    /// operator.insert("retries", 3u32);
    /// let mut resource = operator.clone();
    /// *resource.get_mut::<u32>("retries").unwrap() -= 1;
    /// assert_eq!(resource.get::<u32>("retries"), Some(&2));
    /// assert_eq!(operator.get::<u32>("retries"), Some(&3));
    /// ```
    pub fn get_mut<T: Clone + Send + Sync + 'static>(&mut self, key: &str) -> Option<&mut T> {
        // The common case, a value changed again and again, in one look: it is in the top layer,
        // of type `T`, and both are this memo's alone.
        let in_place = self.top.as_ref().is_some_and(|top| {
            Arc::strong_count(top) == 1
                && matches!(top.entries.get(key), Some((_, Some(v))) if Arc::strong_count(v) == 1 && downcast_ref::<T>(v).is_some())
        });
        if !in_place {
            let (found_key, value) = lookup(self.top.as_deref(), key)?;
            let current: &T = downcast_ref(value)?;
            let key = found_key.clone();
            let copy: ValueRef = Arc::new(current.clone());
            self.top_mut().set(key, copy);
        }
        let top = Arc::get_mut(self.top.as_mut()?)?;
        let value = Arc::get_mut(top.entries.get_mut(key)?.as_mut()?)?;
        Value::as_any_mut(value).downcast_mut::<T>()
    }

    /// Tells whether there is a value under `key`.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("seen", true);
    /// assert!(memo.contains_key("seen"));
    /// assert!(!memo.contains_key("unseen"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        lookup(self.top.as_deref(), key).is_some()
    }

    /// Removes the value under `key` from this memo; returns whether there
    /// was one. Memos sharing the value keep it.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut operator = Memo::new();
    /// operator.insert("seen", true);
    /// let mut resource = operator.clone();
    /// assert!(resource.remove("seen"));
    /// assert!(!resource.remove("seen"));
    /// assert!(!resource.contains_key("seen"));
    /// assert!(operator.contains_key("seen"));
    /// ```
    pub fn remove(&mut self, key: &str) -> bool {
        if !self.contains_key(key) {
            return false;
        }
        let layer = self.top_mut();
        if layer.remove_own(key).is_none() {
            // The value is in a parent layer: hide it with a tombstone.
            if let Some((key, _)) = lookup(layer.parent.as_deref(), key) {
                let key = key.clone();
                layer.entries.push_new(key, None);
                layer.len -= 1;
            }
        }
        self.drop_empty_top();
        true
    }

    /// Returns the number of values in the memo.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("a", 1u8);
    /// memo.insert("b", 2u8);
    /// memo.insert("a", 3u8);
    /// assert_eq!(memo.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.top.as_ref().map_or(0, |top| top.len)
    }

    /// Tells whether the memo holds no values.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// assert!(memo.is_empty());
    /// memo.insert("a", 1u8);
    /// assert!(!memo.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the keys of the memo, each once, in sorted order.
    ///
    /// This collects and sorts the keys first: O(n log n).
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("seen", true);
    /// memo.insert("counter", 1u64);
    /// let keys: Vec<&str> = memo.keys().collect();
    /// assert_eq!(keys, ["counter", "seen"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.visible().into_iter().map(|(key, _)| key)
    }

    /// Takes back ownership of the value under `key` and removes the key.
    ///
    /// This works for values that are not `Clone`, such as a thread handle a
    /// startup handler stored in the operator memo and a cleanup handler must
    /// `join()`. It fails with [`MemoError::Shared`] while another memo still
    /// holds the same value (a resource memo cloned from this one that has
    /// not been dropped yet); the value then stays in the memo, as it does on
    /// [`MemoError::TypeMismatch`].
    ///
    /// ```
    /// use memo_runtime::{Memo, MemoError};
    /// use std::thread::JoinHandle;
    ///
    /// let mut operator = Memo::new();
    /// operator.insert("worker", std::thread::spawn(|| ()));
    ///
    /// let resource = operator.clone();
    /// assert_eq!(
    ///     operator.take::<JoinHandle<()>>("worker").unwrap_err(),
    ///     MemoError::Shared { key: "worker".to_owned() },
    /// );
    /// drop(resource);
    ///
    /// let worker: JoinHandle<()> = operator.take("worker").unwrap();
    /// worker.join().unwrap();
    /// assert!(!operator.contains_key("worker"));
    /// ```
    pub fn take<T: Send + Sync + 'static>(&mut self, key: &str) -> Result<T, MemoError> {
        let missing = || MemoError::Missing { key: key.to_owned() };
        let shared = || MemoError::Shared { key: key.to_owned() };

        // Check everything before changing anything.
        let mut layer_shared = false;
        let mut layer = self.top.as_ref();
        loop {
            let current = layer.ok_or_else(missing)?;
            layer_shared |= Arc::strong_count(current) != 1;
            if let Some((_, slot)) = current.entries.get(key) {
                let value = slot.as_ref().ok_or_else(missing)?;
                if downcast_ref::<T>(value).is_none() {
                    return Err(MemoError::TypeMismatch {
                        key: key.to_owned(),
                        expected: type_name::<T>(),
                        found: type_name_of(value),
                    });
                }
                if layer_shared || Arc::strong_count(value) != 1 {
                    return Err(shared());
                }
                break;
            }
            layer = current.parent.as_ref();
        }

        let top = self.top.as_mut().ok_or_else(missing)?;
        let value = remove_unshared(top, key).ok_or_else(shared)?;
        self.drop_empty_top();
        match Value::into_any(value).downcast::<T>().map(Arc::try_unwrap) {
            Ok(Ok(value)) => Ok(value),
            // Unreachable after the checks above; put the value back anyway.
            Ok(Err(value)) => {
                self.top_mut().set(Key::from(Cow::Owned(key.to_owned())), value);
                Err(shared())
            }
            Err(_) => Err(shared()),
        }
    }

    /// The top layer, owned by this memo alone: a new layer is pushed over
    /// the current one if that one is shared (or missing).
    fn top_mut(&mut self) -> &mut Layer {
        let top = match self.top.take() {
            Some(top) if Arc::strong_count(&top) == 1 => top,
            parent => Arc::new(Layer::over(parent)),
        };
        Arc::get_mut(self.top.insert(top)).expect("a fresh or unshared layer is unique")
    }

    /// Drops the top layer if it is ours alone and holds no entries.
    fn drop_empty_top(&mut self) {
        if let Some(top) = self.top.as_mut().and_then(Arc::get_mut)
            && top.entries.is_empty()
        {
            self.top = top.parent.take();
        }
    }

    /// The visible entries, sorted by key.
    fn visible(&self) -> Vec<(&str, &ValueRef)> {
        let mut all: Vec<(&str, usize, &Slot)> = chain(self.top.as_deref())
            .enumerate()
            .flat_map(|(depth, layer)| layer.entries.iter().map(move |(key, slot)| (key.as_str(), depth, slot)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
        // Keep the topmost entry of each key; tombstones then hide the key.
        all.dedup_by(|later, earlier| later.0 == earlier.0);
        all.into_iter()
            .filter_map(|(key, _, slot)| slot.as_ref().map(|value| (key, value)))
            .collect()
    }
}

impl Default for Memo {
    /// Creates an empty memo, like [`Memo::new`].
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// assert!(Memo::default().is_empty());
    /// ```
    fn default() -> Memo {
        Memo::new()
    }
}

impl Clone for Memo {
    /// A shallow copy, in O(1): the values are shared, not duplicated, but
    /// later inserts and removes in either memo do not show in the other.
    ///
    /// ```
    /// use memo_runtime::Memo;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let mut operator = Memo::new();
    /// operator.insert("log", Arc::new(Mutex::new(Vec::<u32>::new())));
    /// let mut resource = operator.clone();
    /// resource.insert("local", 1u8);
    ///
    /// // The same mutex is seen through both memos...
    /// resource.get::<Arc<Mutex<Vec<u32>>>>("log").unwrap().lock().unwrap().push(7);
    /// assert_eq!(*operator.get::<Arc<Mutex<Vec<u32>>>>("log").unwrap().lock().unwrap(), [7]);
    /// // ...but keys stay local.
    /// assert!(!operator.contains_key("local"));
    /// ```
    fn clone(&self) -> Memo {
        Memo { top: self.top.clone() }
    }
}

impl fmt::Debug for Memo {
    /// Shows the keys, sorted, with the type names of their values.
    ///
    /// ```
    /// use memo_runtime::Memo;
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("seen", true);
    /// memo.insert("counter", 1u64);
    /// assert_eq!(format!("{memo:?}"), r#"Memo { "counter": u64, "seen": bool }"#);
    /// assert_eq!(format!("{:?}", Memo::new()), "Memo {}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let visible = self.visible();
        if f.alternate() {
            f.write_str("Memo ")?;
            let mut map = f.debug_map();
            for (key, value) in &visible {
                map.entry(key, &format_args!("{}", type_name_of(value)));
            }
            return map.finish();
        }
        if visible.is_empty() {
            return f.write_str("Memo {}");
        }
        f.write_str("Memo { ")?;
        for (index, (key, value)) in visible.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key:?}: {}", type_name_of(value))?;
        }
        f.write_str(" }")
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a typed access to a [`Memo`] failed.
///
/// ```
/// use memo_runtime::{Memo, MemoError};
///
/// let memo = Memo::new();
/// let err: MemoError = memo.try_get::<u64>("counter").unwrap_err();
/// assert_eq!(err.to_string(), "no value under key `counter`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoError {
    /// There is no value under the key.
    ///
    /// ```
    /// use memo_runtime::{Memo, MemoError};
    ///
    /// let err = Memo::new().try_get::<u64>("counter").unwrap_err();
    /// assert!(matches!(err, MemoError::Missing { key } if key == "counter"));
    /// ```
    Missing {
        /// The key looked up.
        key: String,
    },
    /// The value under the key is of another type.
    ///
    /// ```
    /// use memo_runtime::{Memo, MemoError};
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("counter", 1u64);
    /// let err = memo.try_get::<i32>("counter").unwrap_err();
    /// assert!(matches!(err, MemoError::TypeMismatch { expected: "i32", found: "u64", .. }));
    /// ```
    TypeMismatch {
        /// The key looked up.
        key: String,
        /// The type asked for, from [`std::any::type_name`].
        expected: &'static str,
        /// The type of the stored value, from [`std::any::type_name`].
        found: &'static str,
    },
    /// [`Memo::take`] cannot take the value: another memo (for example a
    /// resource memo that has not been dropped) still holds it.
    ///
    /// ```
    /// use memo_runtime::{Memo, MemoError};
    ///
    /// let mut memo = Memo::new();
    /// memo.insert("worker", 1u64);
    /// let clone = memo.clone();
    /// let err = memo.take::<u64>("worker").unwrap_err();
    /// assert_eq!(err, MemoError::Shared { key: "worker".to_owned() });
    /// ```
    Shared {
        /// The key looked up.
        key: String,
    },
}

impl fmt::Display for MemoError {
    /// Formats the error in lowercase, rustc style.
    ///
    /// ```
    /// use memo_runtime::MemoError;
    ///
    /// let err = MemoError::Shared { key: "worker".to_owned() };
    /// assert_eq!(err.to_string(), "the value under key `worker` is still shared with another memo");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoError::Missing { key } => write!(f, "no value under key `{key}`"),
            MemoError::TypeMismatch { key, expected, found } => {
                write!(f, "the value under key `{key}` is a `{found}`, not a `{expected}`")
            }
            MemoError::Shared { key } => {
                write!(f, "the value under key `{key}` is still shared with another memo")
            }
        }
    }
}

impl std::error::Error for MemoError {}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------
