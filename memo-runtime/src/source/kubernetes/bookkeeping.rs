//! What the watch has told this process so far, per object: turns kube-runtime's watcher events
//! (which re-list every object after a reconnect or a `410 Gone`) into memo's events, so that
//! handlers fire once per real change and never miss a deletion.

use crate::api::event::metadata_str;
use crate::api::event::{Event, EventType};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};

/// One step of a watch, objects already complete (`kind` and `apiVersion` filled in).
#[derive(Debug)]
pub(super) enum Change {
    /// A (re)list starts.
    Relist,
    /// An object of the list.
    Listed(Value),
    /// The list is complete: whatever was known and not listed is gone.
    ListDone,
    /// An object was added or changed.
    Applied(Value),
    /// An object was deleted.
    Deleted(Value),
}

/// The last version seen of an object, and the object itself for the `DELETED` event it gets if
/// it vanishes while the watch is down.
struct Known {
    resource_version: Box<str>,
    last: Value,
}

/// The objects this process has seen, by uid.
#[derive(Default)]
pub(super) struct Bookkeeping {
    known: HashMap<Box<str>, Known, ahash::RandomState>,
    /// During a relist, the objects listed so far.
    listing: Option<HashSet<Box<str>, ahash::RandomState>>,
}

impl Bookkeeping {
    /// Records `change`, pushing the events it makes onto `events`.
    pub(super) fn record(&mut self, change: Change, events: &mut VecDeque<Event>) {
        match change {
            Change::Relist => self.listing = Some(HashSet::default()),
            Change::Listed(object) => {
                let identity = identity(&object);
                if let Some(listing) = &mut self.listing {
                    listing.insert(identity.clone());
                }
                self.apply(identity, object, events);
            }
            Change::ListDone => {
                let listed = self.listing.take().unwrap_or_default();
                let vanished: Vec<Box<str>> = self
                    .known
                    .keys()
                    .filter(|uid| !listed.contains(*uid))
                    .cloned()
                    .collect();
                for uid in vanished {
                    if let Some(known) = self.known.remove(&uid) {
                        events.push_back(Event::new(EventType::Deleted, known.last));
                    }
                }
            }
            Change::Applied(object) => self.apply(identity(&object), object, events),
            Change::Deleted(object) => {
                self.known.remove(&identity(&object));
                events.push_back(Event::new(EventType::Deleted, object));
            }
        }
    }

    fn apply(&mut self, identity: Box<str>, object: Value, events: &mut VecDeque<Event>) {
        let version = metadata_str(&object, "resourceVersion").unwrap_or("");
        let r#type = match self.known.get_mut(&identity) {
            // Re-listed or re-sent unchanged: its handlers already ran for this version.
            Some(known) if &*known.resource_version == version => return,
            Some(known) => {
                known.resource_version = version.into();
                known.last = object.clone();
                EventType::Modified
            }
            None => {
                let known = Known {
                    resource_version: version.into(),
                    last: object.clone(),
                };
                self.known.insert(identity, known);
                EventType::Added
            }
        };
        events.push_back(Event::new(r#type, object));
    }

    /// How many objects are known.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }
}

/// The uid; `namespace/name` for an object without one (real servers always give one).
fn identity(object: &Value) -> Box<str> {
    match metadata_str(object, "uid") {
        Some(uid) => uid.into(),
        None => format!(
            "{}/{}",
            metadata_str(object, "namespace").unwrap_or(""),
            metadata_str(object, "name").unwrap_or("")
        )
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Bookkeeping, Change};
    use crate::api::event::EventType;
    use serde_json::{Value, json};
    use std::collections::VecDeque;

    fn object(name: &str, version: u32) -> Value {
        json!({"kind": "KopfExample", "apiVersion": "kopf.dev/v1",
               "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                            "resourceVersion": version.to_string()}})
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
        let mut recreated = object("a", 9);
        recreated["metadata"]["uid"] = json!("uid-a-2");
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
}
