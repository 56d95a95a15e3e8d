//! Documents framed on the reading thread and parsed where they are handled.
//!
//! The lane that handles a document parses it just before, and frees it after, on its own
//! thread, as a hand-written loop does: with one lane it takes the documents from here
//! ([`Unparsed::next_item`]); with several, the router takes them as they were framed
//! ([`Unparsed::next_framed`]), reads only each one's uid, and hands the lane its bytes. An
//! allocator such as glibc's makes a thread pay for freeing memory that another thread allocated,
//! and the reading thread allocating while the lanes free fights over the same arena: parsing on
//! the reading thread ran the stream at 0.37-0.42x of a hand-written loop, with one worker or two;
//! parsing in the lanes, at 0.70-0.77x with one worker and 0.67-0.82x with two (BENCHMARKS.md,
//! "Again, stop 22" and "Again, stop 23").

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

/// A document as it was framed, not parsed, or what the framer skipped in its place.
#[derive(Debug)]
pub(crate) enum Framed<'a> {
    /// A document's bytes, found at `line` and `column` of the input.
    Document {
        text: &'a [u8],
        line: usize,
        column: usize,
    },
    Skipped(Skipped),
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
        Some(match self.next_framed()? {
            Framed::Document { text, line, column } => document::parse(text, line, column),
            Framed::Skipped(skipped) => Item::Skipped(skipped),
        })
    }

    /// The next document as it was framed, or the next skipped one; `None` once all were taken.
    pub(crate) fn next_framed(&mut self) -> Option<Framed<'_>> {
        match self.entries.pop_front()? {
            Entry::Document { end, line, column } => {
                let start = std::mem::replace(&mut self.start, end);
                Some(Framed::Document {
                    text: &self.text[start..end],
                    line,
                    column,
                })
            }
            Entry::Skipped(skipped) => Some(Framed::Skipped(skipped)),
        }
    }

    /// Logs the skipped entries at the front; whether a document follows them.
    pub(crate) fn document_next(&mut self) -> bool {
        while let Some(Entry::Skipped(_)) = self.entries.front() {
            if let Some(Entry::Skipped(skipped)) = self.entries.pop_front() {
                skipped.log();
            }
        }
        !self.entries.is_empty()
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

    #[test]
    fn documents_come_back_as_framed_with_their_positions() {
        let mut unparsed = Unparsed::default();
        unparsed.skipped(Skipped::new(1, 1, Severity::Error, "too long".into()));
        unparsed.push(b"{\"a\":1}", 2, 1);
        unparsed.push(b"{\"b\":2}", 3, 7);
        unparsed.skipped(Skipped::new(4, 1, Severity::Error, "too long".into()));
        assert!(unparsed.document_next(), "the skip before it is logged and gone");
        let Some(Framed::Document { text, line, column }) = unparsed.next_framed() else {
            panic!("a document")
        };
        assert_eq!((text, line, column), (&b"{\"a\":1}"[..], 2, 1));
        let Some(Framed::Document { text, line, column }) = unparsed.next_framed() else {
            panic!("a document")
        };
        assert_eq!((text, line, column), (&b"{\"b\":2}"[..], 3, 7));
        assert!(!unparsed.document_next(), "only a skip was left");
        assert!(unparsed.is_empty() && unparsed.next_framed().is_none());
    }
}
