//! Documents framed on the reading thread and parsed where they are handled.
//!
//! With one lane, the lane parses each document just before handling it and frees it after, on
//! its own thread, as a hand-written loop does. An allocator such as glibc's makes a thread pay
//! for freeing memory that another thread allocated, and the reading thread allocating while the
//! lane frees fights over the same arena: with one worker, parsing on the reading thread ran the
//! stream at 0.37-0.40x of a hand-written loop, and parsing here at 0.70-0.75x (BENCHMARKS.md,
//! "Again, stop 22").

use super::document::{self, Item, Skipped};
use std::collections::VecDeque;

/// Framed documents not parsed yet, and what was skipped among them, in input order.
#[derive(Debug, Default)]
pub(crate) struct Unparsed {
    /// The documents' bytes, one after another.
    text: Vec<u8>,
    entries: VecDeque<Entry>,
    /// Where the next document's bytes start in `text`.
    start: usize,
}

#[derive(Debug)]
enum Entry {
    /// A document whose bytes end at `end` in `text`, found at `line` and `column` of the input.
    Document {
        end: usize,
        line: usize,
        column: usize,
    },
    Skipped(Skipped),
}

impl Unparsed {
    /// Adds a document found at `line` and `column` of the input.
    pub(crate) fn push(&mut self, text: &[u8], line: usize, column: usize) {
        self.text.extend_from_slice(text);
        self.entries.push_back(Entry::Document {
            end: self.text.len(),
            line,
            column,
        });
    }

    /// Adds what the framer skipped, in its place among the documents.
    pub(crate) fn skipped(&mut self, skipped: Skipped) {
        self.entries.push_back(Entry::Skipped(skipped));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next document, parsed now, or the next skipped one; `None` once all were taken.
    pub(crate) fn next_item(&mut self) -> Option<Item> {
        match self.entries.pop_front()? {
            Entry::Document { end, line, column } => {
                let item = document::parse(&self.text[self.start..end], line, column);
                self.start = end;
                Some(item)
            }
            Entry::Skipped(skipped) => Some(Item::Skipped(skipped)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::document::Severity;

    #[test]
    fn documents_come_back_parsed_in_order_with_what_was_skipped_between_them() {
        let mut unparsed = Unparsed::default();
        assert!(unparsed.is_empty());
        unparsed.push(
            br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a"}}}"#,
            1,
            1,
        );
        unparsed.skipped(Skipped::new(2, 1, Severity::Error, "line longer than 10 bytes".into()));
        unparsed.push(
            br#"{"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"b"}}}"#,
            3,
            5,
        );
        unparsed.push(b"{not json", 4, 1);
        assert!(!unparsed.is_empty());
        let Some(Item::Event(first)) = unparsed.next_item() else {
            panic!("a first event")
        };
        assert_eq!(first.name(), Some("a"));
        let Some(Item::Skipped(skipped)) = unparsed.next_item() else {
            panic!("the skipped line")
        };
        assert_eq!(
            (skipped.line, skipped.reason.as_str()),
            (2, "line longer than 10 bytes")
        );
        let Some(Item::Event(second)) = unparsed.next_item() else {
            panic!("a second event")
        };
        assert_eq!(second.name(), Some("b"));
        // Positions are the input's, as when the reading thread parses.
        let Some(Item::Skipped(malformed)) = unparsed.next_item() else {
            panic!("a malformed document")
        };
        let Item::Skipped(expected) = document::parse(b"{not json", 4, 1) else {
            panic!("malformed")
        };
        assert_eq!(malformed, expected);
        assert!(unparsed.next_item().is_none());
    }
}
