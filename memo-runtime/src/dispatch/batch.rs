//! What the router hands a lane at once: events, and documents of a stream for the lane to parse,
//! in the order of the source, each numbered among its resource's events.
//!
//! A document travels as its bytes, copied into one buffer per batch: the lane parses it, and so
//! frees it on the thread that allocated it. An event the router parsed (a resource's first, whose
//! kind it checks) travels parsed.

use crate::api::event::Event;
use crate::source::document::{self, Item};

/// One batch for one lane.
#[derive(Default)]
pub(crate) struct Batch {
    items: Vec<(Routed, u32)>,
    /// The documents' bytes, one after another.
    text: Vec<u8>,
}

enum Routed {
    Event(Event),
    /// A document whose bytes end at `end` in the batch's text, found at `line` and `column` of
    /// the input.
    Document {
        end: usize,
        line: usize,
        column: usize,
    },
}

impl Batch {
    /// Adds an event, the router's `seq`-th of its resource.
    pub(crate) fn push(&mut self, event: Event, seq: u32) {
        self.items.push((Routed::Event(event), seq));
    }

    /// Adds a document found at `line` and `column` of the input, the router's `seq`-th event of
    /// its resource.
    pub(crate) fn push_document(&mut self, text: &[u8], line: usize, column: usize, seq: u32) {
        self.text.extend_from_slice(text);
        let end = self.text.len();
        self.items.push((Routed::Document { end, line, column }, seq));
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many of its items are documents, not parsed yet.
    #[cfg(test)]
    pub(crate) fn documents(&self) -> usize {
        self.items
            .iter()
            .filter(|(routed, _)| matches!(routed, Routed::Document { .. }))
            .count()
    }

    /// Each item's resource name (a document's read from its bytes) and number.
    #[cfg(test)]
    pub(crate) fn names(&self) -> Vec<(String, u32)> {
        let mut start = 0;
        let name = |object: &serde_json::Value| object["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        self.items
            .iter()
            .map(|(routed, seq)| match routed {
                Routed::Event(event) => (name(&event.object), *seq),
                Routed::Document { end, .. } => {
                    let document: serde_json::Value =
                        serde_json::from_slice(&self.text[start..*end]).unwrap_or_default();
                    start = *end;
                    (name(&document["object"]), *seq)
                }
            })
            .collect()
    }

    /// The events in order, with their numbers, each document parsed as it is reached; a
    /// document that is no event (which the router's reading of its uid rules out) is logged and
    /// gives `None`.
    pub(crate) fn into_events(self) -> impl Iterator<Item = (Option<Event>, u32)> {
        let Batch { items, text } = self;
        let mut start = 0;
        items.into_iter().map(move |(routed, seq)| {
            let event = match routed {
                Routed::Event(event) => Some(event),
                Routed::Document { end, line, column } => {
                    let document = &text[start..end];
                    start = end;
                    match document::parse(document, line, column) {
                        Item::Event(event) => Some(event),
                        Item::Skipped(skipped) => {
                            skipped.log();
                            None
                        }
                    }
                }
            };
            (event, seq)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_and_documents_come_back_in_order_with_their_numbers() {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        batch.push_document(
            br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a"}}}"#,
            1,
            1,
            1,
        );
        batch.push(Event::added(json!({"kind": "Pod", "metadata": {"name": "b"}})), 1);
        batch.push_document(br#"{"type":"BOOKMARK","object":{}}"#, 2, 1, 2);
        batch.push_document(
            br#"{"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a"}}}"#,
            3,
            1,
            3,
        );
        assert_eq!(batch.len(), 4);
        let events: Vec<(Option<String>, u32)> = batch
            .into_events()
            .map(|(event, seq)| {
                (
                    event.map(|event| format!("{} {}", event.r#type, event.name().unwrap())),
                    seq,
                )
            })
            .collect();
        assert_eq!(
            events,
            [
                (Some("ADDED a".to_owned()), 1),
                (Some("ADDED b".to_owned()), 1),
                (None, 2),
                (Some("DELETED a".to_owned()), 3),
            ]
        );
    }
}
