//! What the watch has told this process so far, per object: turns kube-runtime's watcher events
//! (which re-list every object after a reconnect or a `410 Gone`) into memo's events, so that
//! handlers fire once per real change and never miss a deletion.
//!
//! Objects are known by the text the dispatcher finds their resource by (`Admitted::lookup`:
//! the uid, or kind, group, namespace and name without one), so that the two never disagree on
//! whether two objects are one resource. The last version of each object is the one its event
//! carried, shared: keeping it costs no copy.
//!
//! With `--shard auto`, objects of buckets this replica does not own are dropped here, once their
//! identity is read: nothing of them is kept, and no event is made. A replica that gains buckets
//! lists again (see `watch.rs`): their objects are then new to it.

use crate::api::event::metadata_str;
use crate::api::event::{Event, EventType};
use crate::api::resource::Admitted;
use crate::api::shard::{Owned, bucket_of};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

/// One step of a watch, objects already complete (`kind` and `apiVersion` filled in).
#[derive(Debug)]
pub(super) enum Change {
    /// A (re)list starts.
    Relist,
    /// An object of the list.
    Listed(Arc<Value>),
    /// The list is complete: whatever was known and not listed is gone.
    ListDone,
    /// An object was added or changed.
    Applied(Arc<Value>),
    /// An object was deleted.
    Deleted(Arc<Value>),
}

/// The last version seen of an object: what its `DELETED` event carries if it vanishes while the
/// watch is down.
struct Known {
    last: Arc<Value>,
    /// The list it was last seen in (or after): one older than the current list, at its end,
    /// means it is gone.
    seen: u64,
}

/// The objects this process has seen, by the dispatcher's lookup text.
#[derive(Default)]
pub(super) struct Bookkeeping {
    known: HashMap<Box<str>, Known, ahash::RandomState>,
    /// Counts the lists.
    list: u64,
    /// Reused for the lookup text of objects without a uid.
    lookup_buffer: String,
    /// With `--shard auto`, the buckets this replica owns (set once its keeper starts; until
    /// then every object is kept).
    owned: Arc<OnceLock<Arc<Owned>>>,
}

/// Whether an object known by `lookup` is this replica's to keep: as the dispatcher decides
/// (a bucket past its renewal deadline is not), so that what is kept is what was handled.
fn mine(owned: &OnceLock<Arc<Owned>>, lookup: &str) -> bool {
    owned.get().is_none_or(|owned| owned.owns_bucket(bucket_of(lookup)))
}

impl Bookkeeping {
    /// Keeps only the objects of the buckets `owned` will say this replica owns.
    pub(super) fn sharing(owned: Arc<OnceLock<Arc<Owned>>>) -> Self {
        Bookkeeping {
            owned,
            ..Bookkeeping::default()
        }
    }

    /// Forgets the objects of buckets this replica no longer owns.
    pub(super) fn forget_others(&mut self) {
        let owned = &self.owned;
        self.known.retain(|lookup, _| mine(owned, lookup));
    }

    /// Records `change`, pushing the events it makes onto `events`.
    pub(super) fn record(&mut self, change: Change, events: &mut VecDeque<Event>) {
        match change {
            Change::Relist => self.list += 1,
            Change::Listed(object) | Change::Applied(object) => self.apply(object, events),
            Change::ListDone => {
                let list = self.list;
                let owned = &self.owned;
                self.known.retain(|lookup, known| {
                    if known.seen == list {
                        return true;
                    }
                    // Another replica's now: its owner says it is gone.
                    if mine(owned, lookup) {
                        events.push_back(Event::shared(EventType::Deleted, Arc::clone(&known.last)));
                    }
                    false
                });
            }
            Change::Deleted(object) => {
                if let Ok(admitted) = Admitted::read(&object) {
                    let lookup = admitted.lookup(&mut self.lookup_buffer);
                    self.known.remove(lookup);
                    if !mine(&self.owned, lookup) {
                        return;
                    }
                }
                events.push_back(Event::shared(EventType::Deleted, object));
            }
        }
    }

    fn apply(&mut self, object: Arc<Value>, events: &mut VecDeque<Event>) {
        let Ok(admitted) = Admitted::read(&object) else {
            // Nothing to know it by; the dispatcher refuses it, saying why.
            events.push_back(Event::shared(EventType::Added, object));
            return;
        };
        let lookup = admitted.lookup(&mut self.lookup_buffer);
        if !mine(&self.owned, lookup) {
            // Lost with its bucket since it was kept.
            self.known.remove(lookup);
            return;
        }
        let r#type = match self.known.get_mut(lookup) {
            Some(known) => {
                known.seen = self.list;
                // Re-listed or re-sent unchanged: its handlers already ran for this version.
                if resource_version(&known.last) == resource_version(&object) {
                    return;
                }
                known.last = Arc::clone(&object);
                EventType::Modified
            }
            None => {
                let known = Known {
                    last: Arc::clone(&object),
                    seen: self.list,
                };
                self.known.insert(lookup.into(), known);
                EventType::Added
            }
        };
        events.push_back(Event::shared(r#type, object));
    }

    /// How many objects are known.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }
}

fn resource_version(object: &Value) -> &str {
    metadata_str(object, "resourceVersion").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{Bookkeeping, Change};
    use crate::api::event::EventType;
    use serde_json::{Value, json};
    use std::collections::VecDeque;
    use std::sync::Arc;

    fn body(name: &str, version: u32) -> Value {
        json!({"kind": "KopfExample", "apiVersion": "kopf.dev/v1",
               "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                            "resourceVersion": version.to_string()}})
    }

    fn object(name: &str, version: u32) -> Arc<Value> {
        Arc::new(body(name, version))
    }

    fn with_uid(name: &str, version: u32, uid: Value) -> Arc<Value> {
        let mut object = body(name, version);
        object["metadata"]["uid"] = uid;
        Arc::new(object)
    }

    fn record(book: &mut Bookkeeping, changes: Vec<Change>) -> Vec<(EventType, String, String)> {
        let mut events = VecDeque::new();
        for change in changes {
            book.record(change, &mut events);
        }
        events
            .into_iter()
            .map(|e| {
                let version = e.object["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
                (e.r#type, e.name().unwrap().to_owned(), version)
            })
            .collect()
    }

    fn ev(r#type: EventType, name: &str, version: u32) -> (EventType, String, String) {
        (r#type, name.to_owned(), version.to_string())
    }

    #[test]
    fn first_list_adds_then_changes_modify_and_deletes_delete() {
        let mut book = Bookkeeping::default();
        let events = record(
            &mut book,
            vec![
                Change::Relist,
                Change::Listed(object("a", 1)),
                Change::Listed(object("b", 2)),
                Change::ListDone,
                Change::Applied(object("c", 3)),
                Change::Applied(object("a", 4)),
                Change::Deleted(object("b", 5)),
            ],
        );
        use EventType::*;
        assert_eq!(
            events,
            [
                ev(Added, "a", 1),
                ev(Added, "b", 2),
                ev(Added, "c", 3),
                ev(Modified, "a", 4),
                ev(Deleted, "b", 5)
            ]
        );
        assert_eq!(book.len(), 2);
    }

    #[test]
    fn a_relist_reports_only_what_changed_and_what_vanished() {
        let mut book = Bookkeeping::default();
        record(
            &mut book,
            vec![
                Change::Relist,
                Change::Listed(object("same", 1)),
                Change::Listed(object("changed", 2)),
                Change::Listed(object("gone", 3)),
                Change::ListDone,
            ],
        );
        let events = record(
            &mut book,
            vec![
                Change::Relist,
                Change::Listed(object("same", 1)),
                Change::Listed(object("changed", 7)),
                Change::Listed(object("new", 8)),
                Change::ListDone,
            ],
        );
        use EventType::*;
        assert_eq!(
            events,
            [ev(Modified, "changed", 7), ev(Added, "new", 8), ev(Deleted, "gone", 3)]
        );
        assert_eq!(book.len(), 3);
        // A repeated apply of a version already seen fires nothing.
        assert!(record(&mut book, vec![Change::Applied(object("same", 1))]).is_empty());
    }

    #[test]
    fn a_recreated_object_is_a_new_one() {
        let mut book = Bookkeeping::default();
        let recreated = with_uid("a", 9, json!("uid-a-2"));
        let events = record(
            &mut book,
            vec![
                Change::Applied(object("a", 1)),
                Change::Deleted(object("a", 2)),
                Change::Applied(recreated),
            ],
        );
        use EventType::*;
        assert_eq!(events, [ev(Added, "a", 1), ev(Deleted, "a", 2), ev(Added, "a", 9)]);
    }

    #[test]
    fn a_relist_of_an_object_recreated_under_its_name_deletes_the_old_and_adds_the_new() {
        let mut book = Bookkeeping::default();
        record(
            &mut book,
            vec![Change::Relist, Change::Listed(object("a", 1)), Change::ListDone],
        );
        let events = record(
            &mut book,
            vec![
                Change::Relist,
                Change::Listed(with_uid("a", 5, json!("uid-a-2"))),
                Change::ListDone,
            ],
        );
        use EventType::*;
        assert_eq!(events, [ev(Added, "a", 5), ev(Deleted, "a", 1)]);
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn objects_without_a_uid_are_known_by_kind_namespace_and_name_as_the_dispatcher_knows_them() {
        let mut book = Bookkeeping::default();
        // An empty uid is no uid: two such objects are two resources, not one.
        let events = record(
            &mut book,
            vec![
                Change::Applied(with_uid("a", 1, json!(""))),
                Change::Applied(with_uid("b", 2, Value::Null)),
                Change::Applied(with_uid("a", 3, json!(""))),
            ],
        );
        use EventType::*;
        assert_eq!(events, [ev(Added, "a", 1), ev(Added, "b", 2), ev(Modified, "a", 3)]);
        let mut keys: Vec<&str> = book.known.keys().map(|key| &**key).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["KopfExample.kopf.dev/default/a", "KopfExample.kopf.dev/default/b"]
        );
    }

    #[test]
    fn an_object_without_identity_passes_through_unremembered() {
        let mut book = Bookkeeping::default();
        let nameless = Arc::new(json!({"kind": "KopfExample", "metadata": {"resourceVersion": "1"}}));
        let mut events = VecDeque::new();
        book.record(Change::Applied(Arc::clone(&nameless)), &mut events);
        assert_eq!(events.len(), 1);
        assert!(Arc::ptr_eq(&events[0].object, &nameless));
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn with_shard_auto_only_the_objects_of_owned_buckets_are_kept_and_sent() {
        use crate::api::shard::{Owned, bucket_of};
        use std::sync::OnceLock;
        let cell = Arc::new(OnceLock::new());
        let mut book = Bookkeeping::sharing(Arc::clone(&cell));
        // Before the keeper starts, everything is kept.
        record(&mut book, vec![Change::Applied(object("early", 1))]);
        assert_eq!(book.len(), 1);
        let owned = Arc::new(Owned::default());
        cell.set(Arc::clone(&owned)).unwrap();
        let names: Vec<String> = (0..200).map(|n| format!("o{n}")).collect();
        let (mine, others): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|name| bucket_of(&format!("uid-{name}")).is_multiple_of(2));
        let later = std::time::Instant::now() + std::time::Duration::from_secs(600);
        for bucket in (0..256).step_by(2) {
            owned.hold_until(bucket, later);
            owned.set(bucket, true);
        }
        let changes = names.iter().map(|name| Change::Applied(object(name, 1))).collect();
        let events = record(&mut book, changes);
        assert_eq!(events.len(), mine.len(), "events only for the owned buckets' objects");
        assert!(events.iter().all(|(_, name, _)| mine.contains(&name)));
        book.forget_others();
        let early = usize::from(bucket_of("uid-early").is_multiple_of(2));
        assert_eq!(book.len(), mine.len() + early, "nothing kept of the others");
        // Their deletions are their owners' to report; a relist that misses them says nothing.
        assert!(record(&mut book, vec![Change::Deleted(object(others[0], 2))]).is_empty());
        // A bucket lost: its objects are forgotten, and are not reported gone at the next list.
        for bucket in (0..256).step_by(2) {
            owned.set(bucket, false);
        }
        assert!(record(&mut book, vec![Change::Relist, Change::ListDone]).is_empty());
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn the_event_and_the_bookkeeping_share_one_object() {
        let mut book = Bookkeeping::default();
        let mut events = VecDeque::new();
        book.record(Change::Applied(object("a", 1)), &mut events);
        let added = events.pop_front().unwrap();
        assert!(Arc::ptr_eq(&added.object, &book.known["uid-a"].last));
        assert_eq!(Arc::strong_count(&added.object), 2);
    }
}
