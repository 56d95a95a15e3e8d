//! The layers behind a [`Memo`](super::Memo): type-erased values, keys, entry sets, and the
//! overlay chain with its lookups and compaction.

use std::any::{Any, type_name};
use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Layers with at most this many entries search them linearly.
pub(super) const SMALL_MAX: usize = 8;

/// Chains deeper than this are compacted when a new layer is pushed.
pub(super) const MAX_DEPTH: usize = 8;

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// A type-erased value: any `Send + Sync + 'static` type.
///
/// Always call these methods as `Value::method(&**arc)`: the blanket impl also
/// covers `Arc<dyn Value>` itself, so method syntax on the `Arc` would pick the
/// wrong receiver.
pub(super) trait Value: Any + Send + Sync {
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

pub(super) type ValueRef = Arc<dyn Value>;

/// `Some(value)`, or `None` for a tombstone.
pub(super) type Slot = Option<ValueRef>;

pub(super) fn type_name_of(value: &ValueRef) -> &'static str {
    Value::type_name(&**value)
}

pub(super) fn downcast_ref<T: 'static>(value: &ValueRef) -> Option<&T> {
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
pub(super) enum Key {
    Static(&'static str),
    Owned(Box<Box<str>>),
}

impl Key {
    pub(super) fn as_str(&self) -> &str {
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
pub(super) enum Entries {
    Small(Vec<(Key, Slot)>),
    #[allow(
        clippy::box_collection,
        reason = "keeps `Entries` (and every small layer) one word smaller"
    )]
    Big(Box<HashMap<Key, Slot>>),
}

impl Entries {
    pub(super) fn new() -> Self {
        Entries::Small(Vec::new())
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Entries::Small(v) => v.len(),
            Entries::Big(m) => m.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn get(&self, key: &str) -> Option<(&Key, &Slot)> {
        match self {
            Entries::Small(v) => v.iter().find(|(k, _)| k.as_str() == key).map(|(k, s)| (k, s)),
            Entries::Big(m) => m.get_key_value(key),
        }
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Slot> {
        match self {
            Entries::Small(v) => v.iter_mut().find(|(k, _)| k.as_str() == key).map(|(_, s)| s),
            Entries::Big(m) => m.get_mut(key),
        }
    }

    /// Adds an entry whose key the caller knows to be absent.
    pub(super) fn push_new(&mut self, key: Key, slot: Slot) {
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

    pub(super) fn remove(&mut self, key: &str) -> Option<Slot> {
        match self {
            Entries::Small(v) => {
                let index = v.iter().position(|(k, _)| k.as_str() == key)?;
                Some(v.swap_remove(index).1)
            }
            Entries::Big(m) => m.remove(key),
        }
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Key, &Slot) -> bool) {
        match self {
            Entries::Small(v) => v.retain(|(k, s)| keep(k, s)),
            Entries::Big(m) => m.retain(|k, s| keep(k, s)),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Key, &Slot)> {
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
pub(super) struct Layer {
    pub(super) parent: Option<Arc<Layer>>,
    pub(super) entries: Entries,
    /// Number of keys visible through this layer (including its parents).
    pub(super) len: usize,
}

/// Finds the visible value under `key`, walking the chain from `layer` down.
pub(super) fn lookup<'a>(mut layer: Option<&'a Layer>, key: &str) -> Option<(&'a Key, &'a ValueRef)> {
    while let Some(current) = layer {
        if let Some((k, slot)) = current.entries.get(key) {
            return slot.as_ref().map(|v| (k, v));
        }
        layer = current.parent.as_deref();
    }
    None
}

/// Iterates over the layers of a chain, top first.
pub(super) fn chain(top: Option<&Layer>) -> impl Iterator<Item = &Layer> {
    std::iter::successors(top, |layer| layer.parent.as_deref())
}

impl Layer {
    /// An empty layer over `parent`, compacting the chain if it is too deep.
    pub(super) fn over(parent: Option<Arc<Layer>>) -> Layer {
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
    pub(super) fn compact(top: &Arc<Layer>) -> Layer {
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
    pub(super) fn set(&mut self, key: Key, value: ValueRef) {
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
    pub(super) fn remove_own(&mut self, key: &str) -> Option<ValueRef> {
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
pub(super) fn remove_unshared(layer: &mut Arc<Layer>, key: &str) -> Option<ValueRef> {
    let layer = Arc::get_mut(layer)?;
    if layer.entries.get(key).is_some() {
        return layer.remove_own(key);
    }
    let value = remove_unshared(layer.parent.as_mut()?, key)?;
    layer.len -= 1;
    Some(value)
}
