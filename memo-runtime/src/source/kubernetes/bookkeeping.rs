//! What the watch has told this process so far, per object: turns kube-runtime's watcher events
//! (which re-list every object after a reconnect or a `410 Gone`) into memo's events, so that
//! handlers fire once per real change and never miss a deletion.
//!
//! Objects are known by the text the dispatcher finds their resource by (`Admitted::lookup`:
//! the uid, or kind, group, namespace and name without one), so that the two never disagree on
//! whether two objects are one resource. The last version of each object is the one its event
//! carried, shared: keeping it costs no copy.

use crate::api::event::metadata_str;
use crate::api::event::{Event, EventType};
use crate::api::resource::Admitted;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

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
}

impl Bookkeeping {
    /// Records `change`, pushing the events it makes onto `events`.
    pub(super) fn record(&mut self, change: Change, events: &mut VecDeque<Event>) {
        match change {
            Change::Relist => self.list += 1,
            Change::Listed(object) | Change::Applied(object) => self.apply(object, events),
            Change::ListDone => {
                let list = self.list;
                self.known.retain(|_, known| {
                    if known.seen == list {
                        return true;
                    }
                    events.push_back(Event::shared(EventType::Deleted, Arc::clone(&known.last)));
                    false
                });
            }
            Change::Deleted(object) => {
                if let Ok(admitted) = Admitted::read(&object) {
                    self.known.remove(admitted.lookup(&mut self.lookup_buffer));
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

    /// Sends again, as `MODIFIED`, the last version of every object whose key is in a bucket
    /// `gained` says yes to: a replica that just took those buckets over handles them from their
    /// recorded progress now, not at their next change.
    pub(super) fn replay(&self, gained: &[bool], events: &mut VecDeque<Event>) {
        for (lookup, known) in &self.known {
            if gained
                .get(crate::api::shard::bucket_of(lookup))
                .copied()
                .unwrap_or(false)
            {
                events.push_back(Event::shared(EventType::Modified, Arc::clone(&known.last)));
            }
        }
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
    fn the_event_and_the_bookkeeping_share_one_object() {
        let mut book = Bookkeeping::default();
        let mut events = VecDeque::new();
        book.record(Change::Applied(object("a", 1)), &mut events);
        let added = events.pop_front().unwrap();
        assert!(Arc::ptr_eq(&added.object, &book.known["uid-a"].last));
        assert_eq!(Arc::strong_count(&added.object), 2);
    }
}
