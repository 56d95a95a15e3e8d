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

use std::any::{type_name, Any};
use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Layers with at most this many entries search them linearly.
const SMALL_MAX: usize = 8;

/// Chains deeper than this are compacted when a new layer is pushed.
const MAX_DEPTH: usize = 8;

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// A type-erased value: any `Send + Sync + 'static` type.
///
/// Always call these methods as `Value::method(&**arc)`: the blanket impl also
/// covers `Arc<dyn Value>` itself, so method syntax on the `Arc` would pick the
/// wrong receiver.
trait Value: Any + Send + Sync {
    fn type_name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Any + Send + Sync> Value for T {
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

type ValueRef = Arc<dyn Value>;

/// `Some(value)`, or `None` for a tombstone.
type Slot = Option<ValueRef>;

fn type_name_of(value: &ValueRef) -> &'static str {
    Value::type_name(&**value)
}

fn downcast_ref<T: 'static>(value: &ValueRef) -> Option<&T> {
    Value::as_any(&**value).downcast_ref::<T>()
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// A key: a borrowed literal (no allocation) or an exactly-sized owned string.
///
/// The owned string sits behind a thin pointer so that `Key` is two words,
/// not three: literal keys, the common case, make every entry a word smaller,
/// at the cost of one more small allocation per owned key.
#[derive(Clone)]
enum Key {
    Static(&'static str),
    Owned(Box<Box<str>>),
}

impl Key {
    fn as_str(&self) -> &str {
        match self {
            Key::Static(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl From<Cow<'static, str>> for Key {
    fn from(key: Cow<'static, str>) -> Self {
        match key {
            Cow::Borrowed(s) => Key::Static(s),
            Cow::Owned(s) => Key::Owned(Box::new(s.into_boxed_str())),
        }
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `str` for `Borrow<str>` lookups.
        self.as_str().hash(state);
    }
}

// ---------------------------------------------------------------------------
// Entries of one layer
// ---------------------------------------------------------------------------

/// The entries of one layer: a tight vector while small, a map when big.
enum Entries {
    Small(Vec<(Key, Slot)>),
    #[allow(
        clippy::box_collection,
        reason = "keeps `Entries` (and every small layer) one word smaller"
    )]
    Big(Box<HashMap<Key, Slot>>),
}

impl Entries {
    fn new() -> Self {
        Entries::Small(Vec::new())
    }

    fn len(&self) -> usize {
        match self {
            Entries::Small(v) => v.len(),
            Entries::Big(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &str) -> Option<(&Key, &Slot)> {
        match self {
            Entries::Small(v) => v.iter().find(|(k, _)| k.as_str() == key).map(|(k, s)| (k, s)),
            Entries::Big(m) => m.get_key_value(key),
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Slot> {
        match self {
            Entries::Small(v) => v.iter_mut().find(|(k, _)| k.as_str() == key).map(|(_, s)| s),
            Entries::Big(m) => m.get_mut(key),
        }
    }

    /// Adds an entry whose key the caller knows to be absent.
    fn push_new(&mut self, key: Key, slot: Slot) {
        match self {
            Entries::Small(v) if v.len() < SMALL_MAX => {
                v.reserve_exact(1);
                v.push((key, slot));
            }
            Entries::Small(v) => {
                let mut map = HashMap::with_capacity(v.len() * 2 + 1);
                map.extend(v.drain(..));
                map.insert(key, slot);
                *self = Entries::Big(Box::new(map));
            }
            Entries::Big(m) => {
                m.insert(key, slot);
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        match self {
            Entries::Small(v) => {
                let index = v.iter().position(|(k, _)| k.as_str() == key)?;
                Some(v.swap_remove(index).1)
            }
            Entries::Big(m) => m.remove(key),
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Key, &Slot) -> bool) {
        match self {
            Entries::Small(v) => v.retain(|(k, s)| keep(k, s)),
            Entries::Big(m) => m.retain(|k, s| keep(k, s)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &Slot)> {
        let (small, big) = match self {
            Entries::Small(v) => (Some(v.iter().map(|(k, s)| (k, s))), None),
            Entries::Big(m) => (None, Some(m.iter())),
        };
        small.into_iter().flatten().chain(big.into_iter().flatten())
    }
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/// One layer of the overlay chain. Immutable while shared.
struct Layer {
    parent: Option<Arc<Layer>>,
    entries: Entries,
    /// Number of keys visible through this layer (including its parents).
    len: usize,
}

/// Finds the visible value under `key`, walking the chain from `layer` down.
fn lookup<'a>(mut layer: Option<&'a Layer>, key: &str) -> Option<(&'a Key, &'a ValueRef)> {
    while let Some(current) = layer {
        if let Some((k, slot)) = current.entries.get(key) {
            return slot.as_ref().map(|v| (k, v));
        }
        layer = current.parent.as_deref();
    }
    None
}

/// Iterates over the layers of a chain, top first.
fn chain(top: Option<&Layer>) -> impl Iterator<Item = &Layer> {
    std::iter::successors(top, |layer| layer.parent.as_deref())
}

impl Layer {
    /// An empty layer over `parent`, compacting the chain if it is too deep.
    fn over(parent: Option<Arc<Layer>>) -> Layer {
        match parent {
            None => Layer {
                parent: None,
                entries: Entries::new(),
                len: 0,
            },
            Some(parent) if chain(Some(&parent)).nth(MAX_DEPTH - 1).is_some() => Layer::compact(&parent),
            Some(parent) => {
                let len = parent.len;
                Layer {
                    parent: Some(parent),
                    entries: Entries::new(),
                    len,
                }
            }
        }
    }

    /// Merges the upper layers of the chain under `top` into one new layer.
    ///
    /// Merging goes on until the rest of the chain is at most half the maximum
    /// depth, and then as long as the next layer is not bigger than what has
    /// been merged so far: big layers deep down (an operator memo under many
    /// resource memos) stay shared instead of being copied.
    fn compact(top: &Arc<Layer>) -> Layer {
        let layers: Vec<&Arc<Layer>> = std::iter::successors(Some(top), |layer| layer.parent.as_ref()).collect();
        let mut merged = Entries::new();
        let mut index = 0;
        while let Some(layer) = layers.get(index) {
            let rest_depth = layers.len() - index;
            if index > 0 && rest_depth <= MAX_DEPTH / 2 && layer.entries.len() > merged.len() {
                break;
            }
            for (key, slot) in layer.entries.iter() {
                if merged.get(key.as_str()).is_none() {
                    merged.push_new(key.clone(), slot.clone());
                }
            }
            index += 1;
        }
        let parent = layers.get(index).map(|layer| Arc::clone(layer));
        // Tombstones are only needed for keys the remaining chain still has.
        merged.retain(|key, slot| slot.is_some() || lookup(parent.as_deref(), key.as_str()).is_some());
        Layer {
            parent,
            entries: merged,
            len: top.len,
        }
    }

    /// Sets `key` to `value` in this layer, keeping `len` right.
    fn set(&mut self, key: Key, value: ValueRef) {
        if let Some(slot) = self.entries.get_mut(key.as_str()) {
            if slot.is_none() {
                self.len += 1;
            }
            *slot = Some(value);
            return;
        }
        if lookup(self.parent.as_deref(), key.as_str()).is_none() {
            self.len += 1;
        }
        self.entries.push_new(key, Some(value));
    }

    /// Removes the value this layer itself holds under `key`, leaving a
    /// tombstone if a parent layer also has the key. Returns the removed value.
    fn remove_own(&mut self, key: &str) -> Option<ValueRef> {
        let slot = self.entries.get_mut(key)?;
        let value = slot.take()?;
        self.len -= 1;
        if lookup(self.parent.as_deref(), key).is_none() {
            self.entries.remove(key);
        }
        Some(value)
    }
}

/// Removes `key` from the chain under `layer` if every layer down to the one
/// holding the value is owned by this chain alone; `None` otherwise.
fn remove_unshared(layer: &mut Arc<Layer>, key: &str) -> Option<ValueRef> {
    let layer = Arc::get_mut(layer)?;
    if layer.entries.get(key).is_some() {
        return layer.remove_own(key);
    }
    let value = remove_unshared(layer.parent.as_mut()?, key)?;
    layer.len -= 1;
    Some(value)
}

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
        let (found_key, value) = lookup(self.top.as_deref(), key)?;
        let current: &T = downcast_ref(value)?;
        let in_place = self.top.as_ref().is_some_and(|top| {
            Arc::strong_count(top) == 1
                && matches!(top.entries.get(key), Some((_, Some(v))) if Arc::strong_count(v) == 1)
        });
        if !in_place {
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
        if let Some(top) = self.top.as_mut().and_then(Arc::get_mut) {
            if top.entries.is_empty() {
                self.top = top.parent.take();
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;
    use std::sync::Mutex;
    use std::thread::JoinHandle;

    type Shared = Arc<Mutex<Vec<u32>>>;

    /// Depth of the layer chain of a memo.
    fn depth(memo: &Memo) -> usize {
        chain(memo.top.as_deref()).count()
    }

    /// Heap bytes held by `memo` alone (layers and values it does not share),
    /// counting each `Arc` allocation as two counters plus its payload.
    fn own_heap_bytes(memo: &Memo) -> usize {
        fn arc_bytes(payload: usize) -> usize {
            (2 * size_of::<usize>() + payload).next_multiple_of(size_of::<usize>())
        }
        let mut total = 0;
        let mut layer = memo.top.as_ref();
        while let Some(current) = layer {
            if Arc::strong_count(current) != 1 {
                break;
            }
            total += arc_bytes(size_of::<Layer>());
            total += match &current.entries {
                Entries::Small(v) => v.capacity() * size_of::<(Key, Slot)>(),
                Entries::Big(m) => m.capacity() * (size_of::<(Key, Slot)>() + 1),
            };
            for (key, slot) in current.entries.iter() {
                if let Key::Owned(s) = key {
                    total += size_of::<Box<str>>() + s.len();
                }
                if let Some(value) = slot {
                    if Arc::strong_count(value) == 1 {
                        total += arc_bytes(std::mem::size_of_val(&**value));
                    }
                }
            }
            layer = current.parent.as_ref();
        }
        total
    }

    #[test]
    fn memo_is_send_sync_clone_static() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Memo>();
        fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<MemoError>();
    }

    #[test]
    fn sizes_are_lean() {
        assert_eq!(size_of::<Memo>(), size_of::<usize>());
        assert_eq!(size_of::<Key>(), 2 * size_of::<usize>());
        assert_eq!(size_of::<(Key, Slot)>(), 4 * size_of::<usize>());
        assert_eq!(size_of::<Slot>(), 2 * size_of::<usize>());
        assert_eq!(size_of::<Entries>(), 3 * size_of::<usize>());
        assert_eq!(size_of::<Layer>(), 5 * size_of::<usize>());
    }

    #[test]
    fn small_memo_cloned_from_empty_parent_uses_little_heap() {
        let parent = Memo::new();
        assert_eq!(own_heap_bytes(&parent), 0);
        let mut memo = parent.clone();
        memo.insert("counter", 0u64);
        memo.insert("seen", false);
        let bytes = own_heap_bytes(&memo);
        // Layer 16 + 40, entries 2 * 32, values 2 * 24: 168 bytes on 64 bits.
        assert!(bytes < 200, "{bytes} bytes");
        assert_eq!(bytes, 21 * size_of::<usize>());
        assert_eq!(depth(&memo), 1);
    }

    #[test]
    fn clone_of_big_memo_costs_only_its_own_writes() {
        let mut operator = Memo::new();
        for i in 0..1000 {
            operator.insert(format!("key-{i}"), i as u64);
        }
        let mut resource = operator.clone();
        resource.insert("counter", 1u64);
        let bytes = own_heap_bytes(&resource);
        assert!(bytes < 200, "{bytes} bytes");
    }

    #[test]
    fn insert_get_try_get() {
        let mut memo = Memo::new();
        memo.insert("counter", 5u64);
        memo.insert(String::from("name"), String::from("kopf"));
        assert_eq!(memo.get::<u64>("counter"), Some(&5));
        assert_eq!(memo.get::<String>("name").map(String::as_str), Some("kopf"));
        assert_eq!(memo.get::<u32>("counter"), None);
        assert_eq!(memo.get::<u64>("other"), None);

        assert_eq!(memo.try_get::<u64>("counter"), Ok(&5));
        let missing = memo.try_get::<u64>("other").unwrap_err();
        assert_eq!(missing, MemoError::Missing { key: "other".into() });
        assert_eq!(missing.to_string(), "no value under key `other`");
        let mismatch = memo.try_get::<String>("counter").unwrap_err();
        assert_eq!(
            mismatch,
            MemoError::TypeMismatch {
                key: "counter".into(),
                expected: type_name::<String>(),
                found: type_name::<u64>(),
            }
        );
        assert_eq!(
            mismatch.to_string(),
            "the value under key `counter` is a `u64`, not a `alloc::string::String`"
        );
    }

    #[test]
    fn overwrite_with_another_type() {
        let mut memo = Memo::new();
        memo.insert("x", 1u64);
        memo.insert("x", "text");
        assert_eq!(memo.len(), 1);
        assert_eq!(memo.get::<u64>("x"), None);
        assert_eq!(memo.get::<&str>("x"), Some(&"text"));

        // Also over a parent layer.
        let mut clone = memo.clone();
        clone.insert("x", 2.5f64);
        assert_eq!(clone.len(), 1);
        assert_eq!(clone.get::<f64>("x"), Some(&2.5));
        assert_eq!(memo.get::<&str>("x"), Some(&"text"));
    }

    #[test]
    fn clone_shares_values_but_not_keys() {
        let mut operator = Memo::new();
        operator.insert("log", Shared::default());
        operator.insert("both", 1u8);
        let mut resource = operator.clone();

        resource.get::<Shared>("log").unwrap().lock().unwrap().push(1);
        operator.get::<Shared>("log").unwrap().lock().unwrap().push(2);
        assert_eq!(*resource.get::<Shared>("log").unwrap().lock().unwrap(), [1, 2]);
        assert!(Arc::ptr_eq(
            resource.get::<Shared>("log").unwrap(),
            operator.get::<Shared>("log").unwrap()
        ));

        resource.insert("resource-only", 1u8);
        assert!(resource.remove("both"));
        operator.insert("operator-only", 2u8);
        assert!(!operator.contains_key("resource-only"));
        assert!(operator.contains_key("both"));
        assert!(!resource.contains_key("operator-only"));
        assert!(!resource.contains_key("both"));
        assert_eq!(operator.len(), 3);
        assert_eq!(resource.len(), 2);
    }

    #[test]
    fn remove_uses_tombstone_over_parent() {
        let mut parent = Memo::new();
        parent.insert("a", 1u8);
        parent.insert("b", 2u8);
        let mut child = parent.clone();
        child.insert("a", 10u8);
        assert!(child.remove("a"));
        assert_eq!(child.get::<u8>("a"), None, "parent value must stay hidden");
        assert!(!child.remove("a"));
        assert!(child.remove("b"));
        assert!(!child.remove("zzz"));
        assert!(child.is_empty());
        assert_eq!(child.keys().count(), 0);
        assert_eq!(parent.get::<u8>("a"), Some(&1));
        assert_eq!(parent.len(), 2);

        // Re-inserting over a tombstone makes the key visible again.
        child.insert("a", 3u8);
        assert_eq!(child.get::<u8>("a"), Some(&3));
        assert_eq!(child.len(), 1);
    }

    #[test]
    fn removing_last_own_key_frees_the_layer() {
        let mut memo = Memo::new();
        memo.insert("a", 1u8);
        assert!(memo.remove("a"));
        assert!(memo.top.is_none());
    }

    #[test]
    fn len_keys_contains_after_layered_writes() {
        let mut l1 = Memo::new();
        l1.insert("a", 1u8);
        l1.insert("b", 2u8);
        let mut l2 = l1.clone();
        l2.insert("c", 3u8);
        l2.remove("a");
        let mut l3 = l2.clone();
        l3.insert("a", 4u8);
        l3.insert("b", 5u8);
        l3.remove("c");
        l3.insert("d", 6u8);

        assert_eq!(l1.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(l2.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(l3.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
        assert_eq!((l1.len(), l2.len(), l3.len()), (2, 2, 3));
        assert!(l3.contains_key("a") && !l3.contains_key("c"));
        assert!(!l2.contains_key("a") && l2.contains_key("c"));
        assert_eq!(l3.get::<u8>("b"), Some(&5));
        assert_eq!(l2.get::<u8>("b"), Some(&2));
    }

    #[test]
    fn get_mut_copies_on_write() {
        let mut parent = Memo::new();
        parent.insert("n", 1u64);
        let mut child = parent.clone();
        *child.get_mut::<u64>("n").unwrap() += 10;
        assert_eq!(child.get::<u64>("n"), Some(&11));
        assert_eq!(parent.get::<u64>("n"), Some(&1));

        // A clone of a clone; mutate the middle one after cloning.
        let grandchild = child.clone();
        *child.get_mut::<u64>("n").unwrap() += 100;
        assert_eq!(child.get::<u64>("n"), Some(&111));
        assert_eq!(grandchild.get::<u64>("n"), Some(&11));
        assert_eq!(parent.get::<u64>("n"), Some(&1));

        // Mutating the parent does not leak into children either.
        *parent.get_mut::<u64>("n").unwrap() = 0;
        assert_eq!(child.get::<u64>("n"), Some(&111));
        assert_eq!(grandchild.get::<u64>("n"), Some(&11));
        assert_eq!(child.len(), 1);
        assert_eq!(parent.len(), 1);

        assert!(child.get_mut::<u32>("n").is_none());
        assert!(child.get_mut::<u64>("missing").is_none());
    }

    #[test]
    fn get_mut_in_place_when_unshared() {
        let mut memo = Memo::new();
        memo.insert("v", vec![1u32, 2, 3]);
        let layer_before = Arc::as_ptr(memo.top.as_ref().unwrap());
        let value_before: *const Vec<u32> = memo.get::<Vec<u32>>("v").unwrap();
        memo.get_mut::<Vec<u32>>("v").unwrap().push(4);
        assert_eq!(Arc::as_ptr(memo.top.as_ref().unwrap()), layer_before);
        assert_eq!(memo.get::<Vec<u32>>("v").unwrap() as *const _, value_before);
        assert_eq!(memo.get::<Vec<u32>>("v").unwrap(), &[1, 2, 3, 4]);

        // After the clone is dropped, the first write copies, the next is in place.
        let clone = memo.clone();
        memo.get_mut::<Vec<u32>>("v").unwrap().push(5);
        let copied: *const Vec<u32> = memo.get::<Vec<u32>>("v").unwrap();
        assert_ne!(copied, value_before);
        assert_eq!(clone.get::<Vec<u32>>("v").unwrap(), &[1, 2, 3, 4]);
        drop(clone);
        memo.get_mut::<Vec<u32>>("v").unwrap().push(6);
        assert_eq!(memo.get::<Vec<u32>>("v").unwrap() as *const _, copied);
        assert_eq!(memo.get::<Vec<u32>>("v").unwrap(), &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn take_join_handle_after_clones_dropped() {
        let mut operator = Memo::new();
        operator.insert("worker", std::thread::spawn(|| 40 + 2));
        operator.insert("other", 1u8);
        let mut resources: Vec<Memo> = (0..3).map(|_| operator.clone()).collect();
        for (i, r) in resources.iter_mut().enumerate() {
            r.insert("i", i);
        }
        drop(resources);
        // The key is in a layer below the top one? Make it so.
        let snapshot = operator.clone();
        operator.insert("late", 2u8);
        drop(snapshot);
        assert_eq!(depth(&operator), 2);

        let handle = operator.take::<JoinHandle<i32>>("worker").unwrap();
        assert_eq!(handle.join().unwrap(), 42);
        assert!(!operator.contains_key("worker"));
        assert_eq!(operator.len(), 2);
        assert_eq!(operator.keys().collect::<Vec<_>>(), ["late", "other"]);
        assert_eq!(
            operator.take::<JoinHandle<i32>>("worker").unwrap_err(),
            MemoError::Missing { key: "worker".into() }
        );
    }

    #[test]
    fn take_while_shared_keeps_value() {
        let mut operator = Memo::new();
        operator.insert("worker", std::thread::spawn(|| ()));
        let resource = operator.clone();
        let err = operator.take::<JoinHandle<()>>("worker").unwrap_err();
        assert_eq!(err, MemoError::Shared { key: "worker".into() });
        assert_eq!(
            err.to_string(),
            "the value under key `worker` is still shared with another memo"
        );
        assert!(operator.contains_key("worker"));
        assert!(resource.contains_key("worker"));

        let err = operator.take::<u8>("worker").unwrap_err();
        assert!(matches!(err, MemoError::TypeMismatch { .. }));
        drop(resource);
        let mismatch = operator.take::<u8>("worker").unwrap_err();
        assert!(matches!(mismatch, MemoError::TypeMismatch { .. }));
        assert!(operator.contains_key("worker"));
        operator.take::<JoinHandle<()>>("worker").unwrap().join().unwrap();
        assert!(operator.is_empty());
    }

    #[test]
    fn take_shadowed_key_leaves_tombstone() {
        let mut parent = Memo::new();
        parent.insert("k", 1u32);
        let mut child = parent.clone();
        child.insert("k", String::from("own"));
        assert_eq!(child.take::<String>("k").unwrap(), "own");
        assert!(!child.contains_key("k"));
        assert_eq!(child.len(), 0);
        assert_eq!(parent.get::<u32>("k"), Some(&1));
        // The parent's value is shared with `parent`: it cannot be taken.
        let mut child2 = parent.clone();
        assert!(matches!(child2.take::<u32>("k"), Err(MemoError::Shared { .. })));
    }

    #[test]
    fn chain_flattening_keeps_values_right() {
        let mut memo = Memo::new();
        let mut keep = Vec::new();
        for i in 0..100u64 {
            let snapshot = memo.clone();
            memo.insert(format!("k{i}"), i);
            if i % 3 == 0 && i > 0 {
                assert!(memo.remove(&format!("k{}", i - 1)));
            }
            if i % 5 == 0 {
                *memo.get_mut::<u64>("k0").unwrap() += 1;
            }
            keep.push(snapshot);
            assert!(depth(&memo) <= MAX_DEPTH, "depth {}", depth(&memo));
        }
        let expected: Vec<u64> = (0..100).filter(|i| i % 3 != 2).collect();
        assert_eq!(memo.len(), expected.len());
        for i in 0..100u64 {
            let value = memo.get::<u64>(&format!("k{i}"));
            if expected.contains(&i) {
                let want = if i == 0 { 20 } else { i };
                assert_eq!(value, Some(&want), "k{i}");
            } else {
                assert_eq!(value, None, "k{i}");
            }
        }
        assert_eq!(memo.keys().count(), expected.len());
        // Snapshots still see their own state.
        assert_eq!(keep[10].len(), 10 - 3);
        assert_eq!(keep[10].get::<u64>("k0"), Some(&2));
        assert_eq!(keep[0].len(), 0);
    }

    #[test]
    fn big_parent_many_clones() {
        let mut operator = Memo::new();
        for i in 0..1000u64 {
            operator.insert(format!("op-{i}"), i);
        }
        assert!(matches!(operator.top.as_ref().unwrap().entries, Entries::Big(_)));
        let resources: Vec<Memo> = (0..10_000u64)
            .map(|i| {
                let mut r = operator.clone();
                r.insert("counter", i);
                r
            })
            .collect();
        for (i, r) in resources.iter().enumerate().step_by(997) {
            assert_eq!(r.len(), 1001);
            assert_eq!(r.get::<u64>("counter"), Some(&(i as u64)));
            assert_eq!(r.get::<u64>("op-999"), Some(&999));
            assert_eq!(r.get::<u64>("op-0"), Some(&0));
            assert_eq!(depth(r), 2);
        }
        assert!(!operator.contains_key("counter"));
        assert_eq!(operator.len(), 1000);
    }

    #[test]
    fn deep_chain_over_big_base_keeps_base_shared() {
        let mut operator = Memo::new();
        for i in 0..1000u64 {
            operator.insert(format!("op-{i}"), i);
        }
        let base = Arc::as_ptr(operator.top.as_ref().unwrap());
        let mut memo = operator.clone();
        let mut snapshots = Vec::new();
        for i in 0..50u64 {
            snapshots.push(memo.clone());
            memo.insert(format!("r-{i}"), i);
            assert!(depth(&memo) <= MAX_DEPTH);
        }
        let bottom = chain(memo.top.as_deref()).last().unwrap() as *const Layer;
        assert_eq!(bottom, base, "the operator layer must not be copied");
        assert_eq!(memo.len(), 1050);
        assert_eq!(memo.get::<u64>("r-0"), Some(&0));
        assert_eq!(memo.get::<u64>("op-500"), Some(&500));
    }

    #[test]
    fn debug_output() {
        let mut memo = Memo::new();
        assert_eq!(format!("{memo:?}"), "Memo {}");
        memo.insert("seen", true);
        memo.insert("counter", 1u64);
        let mut clone = memo.clone();
        clone.insert("log", Shared::default());
        clone.remove("seen");
        assert_eq!(format!("{memo:?}"), r#"Memo { "counter": u64, "seen": bool }"#);
        assert_eq!(
            format!("{clone:?}"),
            format!(r#"Memo {{ "counter": u64, "log": {} }}"#, type_name::<Shared>())
        );
        assert!(format!("{memo:#?}").contains("\"counter\": u64,"));
    }
}
