//! Frames a `kubectl --watch` stream into documents by lines, and hands each to serde_json.
//!
//! kubectl `-o json --watch --output-watch-events` prints each document pretty-printed: `{` alone
//! on a line at column 1, `}` at column 1 to close it, everything between indented; `-o json`
//! piped through `jq -c`, or written by a program, is one document per line. So:
//! - a line that is `{` alone starts a pretty-printed document, which ends with the next line
//!   that starts with `}`; a `{` at column 1 before that means the document was cut short (it is
//!   reported), and the next one starts there;
//! - any other line that is not blank is one document (leading blanks allowed), so two documents
//!   on one line are one malformed document, and a garbage line is skipped alone.
//!
//! Framing by lines replaced a bracket scanner, which tracked string, escape and depth state for
//! every byte where the framer only looks for a newline: measured faster on every input
//! (BENCHMARKS.md, measurement 9). serde_json still checks each document, once, when complete.

use super::document::{self, Item, Severity, Skipped};
use super::unparsed::Unparsed;
use crate::api::shard::Sharding;
use std::sync::{Arc, OnceLock};

/// A document larger than this is dropped rather than buffered without bound (Kubernetes objects
/// are far smaller).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

/// How much room the stream sources offer each read.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
enum State {
    Between,
    /// Inside a pretty-printed document that starts at `start` (an offset of the buffer, at line
    /// `line`).
    Pretty {
        start: usize,
        line: usize,
    },
    /// Dropping, up to the end of the line, a document over the limit (reported already);
    /// `pretty`: its lines that follow go too.
    RestOfLine {
        pretty: bool,
    },
    /// Dropping the lines of a pretty-printed document over the limit, up to its `}` line (or the
    /// `{` line of the next one).
    RestOfDocument,
}

/// Synchronous, incremental framer: bytes in ([`LineFramer::buffer`]), events or skipped
/// documents out ([`LineFramer::next_item`]); it does no I/O.
pub(crate) struct LineFramer {
    buf: Vec<u8>,
    /// The start of the first line not yet framed.
    pos: usize,
    /// Absolute 1-based line of `buf[pos]`.
    line: usize,
    /// How far past `pos` no newline was found, so that a long line is searched once.
    searched: usize,
    state: State,
    eof: bool,
    /// The largest document kept.
    limit: usize,
    /// Which resources this replica handles, once the operator says.
    shard: Arc<OnceLock<Sharding>>,
    /// While the consumer parses ([`LineFramer::defer`]): the documents framed and not parsed.
    /// Boxed: a framer that parses (most of them) carries one word for it.
    deferred: Option<Box<Unparsed>>,
}

fn blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

fn indent(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == b' ' || b == b'\t').count()
}

/// Without its trailing blanks: an EOF error then points at the last byte that was there.
fn trim_end(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    &bytes[..len]
}

impl LineFramer {
    pub(crate) fn new() -> Self {
        Self::with_limit(MAX_DOCUMENT_BYTES)
    }

    fn with_limit(limit: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            pos: 0,
            line: 1,
            searched: 0,
            state: State::Between,
            eof: false,
            limit,
            shard: Arc::default(),
            deferred: None,
        }
    }

    /// Whether documents are parsed here (`false`, the default) or kept whole for the consumer to
    /// parse ([`LineFramer::take_unparsed`]); what is skipped among them then waits with them.
    pub(crate) fn defer(&mut self, defer: bool) {
        match (defer, &self.deferred) {
            (true, None) => self.deferred = Some(Box::default()),
            (false, Some(_)) => self.deferred = None,
            _ => {}
        }
    }

    /// The documents kept whole since the last call, if any.
    pub(crate) fn take_unparsed(&mut self) -> Option<Box<Unparsed>> {
        let deferred = self.deferred.as_mut()?;
        (!deferred.is_empty()).then(|| std::mem::take(deferred))
    }

    /// `skipped` in its place among the documents kept whole; given back when documents are
    /// parsed here.
    pub(crate) fn keep_skipped(&mut self, skipped: Skipped) -> Option<Skipped> {
        match &mut self.deferred {
            Some(deferred) => {
                deferred.skipped(skipped);
                None
            }
            None => Some(skipped),
        }
    }

    /// Where the operator says which resources this replica handles (`--shard`), once it knows:
    /// from then on, documents of other replicas' resources are dropped after reading their
    /// uid, before they are parsed.
    pub(crate) fn shard(&self) -> Arc<OnceLock<Sharding>> {
        Arc::clone(&self.shard)
    }

    /// A document as an item; `None` for another replica's resource, or when it is kept whole
    /// in `deferred`. (Fields, not `self`: the text is borrowed from the buffer.)
    fn parse(
        shard: &OnceLock<Sharding>,
        deferred: &mut Option<Box<Unparsed>>,
        text: &[u8],
        line: usize,
        column: usize,
    ) -> Option<Item> {
        if let Some(shard) = shard.get()
            && document::elsewhere(text, shard)
        {
            return None;
        }
        if let Some(deferred) = deferred {
            deferred.push(text, line, column);
            return None;
        }
        Some(document::parse(text, line, column))
    }

    /// The first byte still needed: the start of an unfinished document, or of the next line.
    fn keep_from(&self) -> usize {
        match self.state {
            State::Pretty { start, .. } => start,
            _ => self.pos,
        }
    }

    /// The buffer to append input to (a read goes straight into it). Bytes no longer needed are
    /// dropped first once they are half of it, so moving the rest is paid for by what was framed.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        let keep = self.keep_from();
        if keep > 0 && keep * 2 >= self.buf.len() {
            self.buf.drain(..keep);
            self.pos -= keep;
            if let State::Pretty { start, .. } = &mut self.state {
                *start -= keep;
            }
        }
        &mut self.buf
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buffer().extend_from_slice(data);
    }

    /// No more input will come: what is left is framed as the last document.
    pub(crate) fn finish(&mut self) {
        self.eof = true;
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.eof
    }

    /// The line framing has reached (1-based).
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// The next line, without its newline; `None` when more bytes are needed.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let rest = &self.buf[self.pos + self.searched..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(at) => {
                let end = self.pos + self.searched + at;
                self.searched = 0;
                Some((self.pos, end))
            }
            None if self.eof && self.pos < self.buf.len() => {
                self.searched = 0;
                Some((self.pos, self.buf.len()))
            }
            None => {
                self.searched = self.buf.len() - self.pos;
                None
            }
        }
    }

    fn consume(&mut self, end: usize) {
        self.pos = (end + 1).min(self.buf.len());
        self.line += 1;
    }

    /// Forgets the unfinished line buffered so far (its newline, when it comes, is consumed then).
    fn drop_unfinished_line(&mut self) {
        self.pos = self.buf.len();
        self.searched = 0;
    }

    /// The next event or skipped document; `None` when more bytes are needed (or, after
    /// [`LineFramer::finish`], when the input is exhausted).
    pub(crate) fn next_item(&mut self) -> Option<Item> {
        loop {
            let Some((start, end)) = self.next_line() else {
                return self.between_reads();
            };
            let text = &self.buf[start..end];
            match self.state {
                State::Between if blank(text) => self.consume(end),
                State::Between if trim_end(text) == b"{" => {
                    self.state = State::Pretty { start, line: self.line };
                    self.consume(end);
                }
                State::Between => {
                    let indent = indent(text);
                    let item = Self::parse(
                        &self.shard,
                        &mut self.deferred,
                        trim_end(&text[indent..]),
                        self.line,
                        indent + 1,
                    );
                    self.consume(end);
                    if item.is_some() {
                        return item;
                    }
                }
                State::Pretty { start: doc, line } if text.first() == Some(&b'}') => {
                    self.state = State::Between;
                    let item = Self::parse(&self.shard, &mut self.deferred, trim_end(&self.buf[doc..end]), line, 1);
                    self.consume(end);
                    if item.is_some() {
                        return item;
                    }
                }
                State::Pretty { start: doc, line } if text.first() == Some(&b'{') => {
                    // Cut short: this line starts the next document and is framed again.
                    self.state = State::Between;
                    let item = Self::parse(
                        &self.shard,
                        &mut self.deferred,
                        trim_end(&self.buf[doc..start]),
                        line,
                        1,
                    );
                    if item.is_some() {
                        return item;
                    }
                }
                State::Pretty { .. } => self.consume(end),
                State::RestOfLine { pretty } => {
                    self.state = if pretty { State::RestOfDocument } else { State::Between };
                    self.consume(end);
                }
                State::RestOfDocument if text.first() == Some(&b'{') => self.state = State::Between,
                State::RestOfDocument if text.first() == Some(&b'}') => {
                    self.state = State::Between;
                    self.consume(end);
                }
                State::RestOfDocument => self.consume(end),
            }
        }
    }

    /// What the bytes after the last complete line give before more come: the unfinished
    /// document at the end of input, or the report of one over the limit.
    fn between_reads(&mut self) -> Option<Item> {
        match self.state {
            State::Pretty { start, line } if self.eof => {
                self.state = State::Between;
                Self::parse(&self.shard, &mut self.deferred, trim_end(&self.buf[start..]), line, 1)
            }
            State::Pretty { start, line } if self.buf.len() - start > self.limit => {
                self.state = if self.pos < self.buf.len() {
                    State::RestOfLine { pretty: true }
                } else {
                    State::RestOfDocument
                };
                self.drop_unfinished_line();
                let reason = format!("document larger than {} bytes", self.limit);
                Some(Item::Skipped(Skipped::new(line, 1, Severity::Error, reason)))
            }
            State::Between if self.buf.len() - self.pos > self.limit => {
                let column = indent(&self.buf[self.pos..]) + 1;
                self.state = State::RestOfLine { pretty: false };
                self.drop_unfinished_line();
                let reason = format!("line longer than {} bytes", self.limit);
                Some(Item::Skipped(Skipped::new(self.line, column, Severity::Error, reason)))
            }
            State::RestOfLine { .. } => {
                self.drop_unfinished_line();
                None
            }
            _ => None,
        }
    }
}

/// Frames `input` as if it arrived in reads of `chunk` bytes, handing every item to `each`.
pub(crate) fn split_all(input: &[u8], chunk: usize, mut each: impl FnMut(Item)) {
    let mut framer = LineFramer::new();
    for piece in input.chunks(chunk.max(1)) {
        framer.push(piece);
        while let Some(item) = framer.next_item() {
            each(item);
        }
    }
    framer.finish();
    while let Some(item) = framer.next_item() {
        each(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::{Event, EventType};
    use serde_json::{Value, json};

    #[test]
    fn with_a_shard_other_replicas_documents_are_dropped_unparsed_and_the_rest_judged_as_ever() {
        let shard = crate::api::shard::Shard::new(0, 2).unwrap();
        let uids: Vec<String> = (0..40).map(|n| format!("uid-{n}")).collect();
        let mut input = String::new();
        for uid in &uids {
            input.push_str(&format!(
                "{{\"type\":\"ADDED\",\"object\":{{\"kind\":\"K\",\"metadata\":{{\"name\":\"{uid}\",\"uid\":\"{uid}\"}}}}}}\n"
            ));
        }
        // Without a uid: parsed and judged (here, refused: no "type").
        input.push_str("{\"object\":{\"kind\":\"K\",\"metadata\":{\"name\":\"x\"}}}\n");
        // A pretty-printed document of another replica, then a malformed line.
        let other = uids.iter().find(|uid| !shard.owns(uid)).unwrap();
        input.push_str(&format!(
            "{{\n  \"type\": \"ADDED\",\n  \"object\": {{\"metadata\": {{\"uid\": \"{other}\"}}}}\n}}\nnot json\n"
        ));
        let framer = LineFramer::new();
        framer.shard().set(crate::api::shard::Sharding::Static(shard)).unwrap();
        let (events, skipped) = frame(framer, input.as_bytes(), 7);
        let kept: Vec<&str> = events.iter().map(|event| event.uid().unwrap()).collect();
        let mine: Vec<&str> = uids.iter().map(String::as_str).filter(|uid| shard.owns(uid)).collect();
        assert!(!mine.is_empty() && mine.len() < uids.len());
        assert_eq!(kept, mine);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].reason.contains("missing \"type\""), "{skipped:?}");
        assert_eq!(skipped[1].line, uids.len() + 6);
    }

    fn frame(mut framer: LineFramer, input: &[u8], chunk: usize) -> (Vec<Event>, Vec<Skipped>) {
        let (mut events, mut skipped) = (Vec::new(), Vec::new());
        let mut take = |framer: &mut LineFramer| {
            while let Some(item) = framer.next_item() {
                match item {
                    Item::Event(event) => events.push(event),
                    Item::Skipped(s) => skipped.push(s),
                }
            }
        };
        for piece in input.chunks(chunk) {
            framer.push(piece);
            take(&mut framer);
        }
        framer.finish();
        take(&mut framer);
        (events, skipped)
    }

    /// The events and skipped documents of `input`, which must be the same whether it arrives
    /// at once or in reads of a few bytes.
    fn run(input: &[u8]) -> (Vec<Event>, Vec<Skipped>) {
        let whole = frame(LineFramer::new(), input, input.len().max(1));
        for chunk in [1, 3, 7, 4096] {
            assert_eq!(frame(LineFramer::new(), input, chunk), whole, "in reads of {chunk}");
        }
        whole
    }

    fn names(events: &[Event]) -> Vec<(EventType, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.r#type,
                    e.object["metadata"]["name"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect()
    }

    fn just_names(events: &[Event]) -> Vec<String> {
        names(events).into_iter().map(|(_, name)| name).collect()
    }

    /// 1-based line of the first line containing `needle`.
    fn line_of(input: &str, needle: &str) -> usize {
        input.lines().position(|l| l.contains(needle)).expect("needle") + 1
    }

    fn pod(ty: &str, name: &str) -> String {
        json!({"type": ty, "object": {"kind": "Pod", "metadata": {"name": name, "namespace": "default"}}}).to_string()
    }

    fn pretty(ty: &str, name: &str) -> String {
        serde_json::to_string_pretty(&json!({"type": ty, "object": {"kind": "Pod", "metadata": {"name": name}}}))
            .unwrap()
    }

    const PRETTY: &str = r#"{
  "type": "ADDED",
  "object": {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
      "creationTimestamp": "2024-05-01T10:00:00Z",
      "labels": {
        "app": "web"
      },
      "name": "web-0",
      "namespace": "shop",
      "resourceVersion": "1001",
      "uid": "3f0c2f5e-9a41-4c55-8f43-0f5d2a1b7c01"
    },
    "spec": {
      "containers": [
        {
          "image": "nginx:1.25",
          "name": "web",
          "args": ["--brace={", "quote=\"}\""]
        }
      ]
    },
    "status": {
      "phase": "Pending"
    }
  }
}
{
  "type": "MODIFIED",
  "object": {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
      "name": "web-0",
      "namespace": "shop",
      "resourceVersion": "1002",
      "uid": "3f0c2f5e-9a41-4c55-8f43-0f5d2a1b7c01"
    },
    "status": {
      "phase": "Running"
    }
  }
}
{
  "type": "DELETED",
  "object": {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
      "name": "settings",
      "namespace": "kube-system",
      "resourceVersion": "1003",
      "uid": "77d1e0aa-2b6c-4c1e-9d0e-5e6f7a8b9c0d"
    },
    "data": {}
  }
}
"#;

    #[test]
    fn pretty_printed_documents() {
        let (events, skipped) = run(PRETTY.as_bytes());
        assert_eq!(skipped, vec![]);
        assert_eq!(
            names(&events),
            vec![
                (EventType::Added, "web-0".to_owned()),
                (EventType::Modified, "web-0".to_owned()),
                (EventType::Deleted, "settings".to_owned()),
            ]
        );
        assert_eq!(events[0].object["metadata"]["namespace"], "shop");
        assert_eq!(events[0].object["spec"]["containers"][0]["args"][1], "quote=\"}\"");
        assert_eq!(events[1].object["status"]["phase"], "Running");
        assert_eq!(
            events[2].object["metadata"]["uid"],
            "77d1e0aa-2b6c-4c1e-9d0e-5e6f7a8b9c0d"
        );
    }

    #[test]
    fn one_document_per_line_among_blank_lines() {
        let input = format!(
            "{}\n{}\r\n\n   {}  \t\n \t \r\n\t{}",
            pod("ADDED", "a"),
            pod("MODIFIED", "b"),
            pod("DELETED", "c"),
            pod("ADDED", "d"),
        );
        let (events, skipped) = run(input.as_bytes());
        assert_eq!(skipped, vec![]);
        assert_eq!(just_names(&events), ["a", "b", "c", "d"]);
        assert_eq!(events[2].r#type, EventType::Deleted);
    }

    #[test]
    fn two_documents_on_one_line_are_one_malformed_document() {
        let (c, d) = (pod("DELETED", "c"), pod("ADDED", "d"));
        let input = format!("{}\n   {c}  \t{d}\n{}\n", pod("ADDED", "a"), pod("ADDED", "e"));
        let (events, skipped) = run(input.as_bytes());
        assert_eq!(just_names(&events), ["a", "e"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        // At the second document's `{`.
        assert_eq!((skipped[0].line, skipped[0].column), (2, 3 + c.len() + 3 + 1));
        assert_eq!(skipped[0].severity, Severity::Error);
        assert!(
            skipped[0].reason.starts_with(
                "malformed document: trailing characters after a complete document (one document per line"
            ),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn malformed_document_in_the_middle() {
        let input = format!(
            "{}\n{}\n{}\n{}\n",
            pod("ADDED", "before"),
            r#"{"type": "ADDED", "object": {"kind": "#,
            pod("MODIFIED", "after-1"),
            pod("DELETED", "after-2"),
        );
        let (events, skipped) = run(input.as_bytes());
        assert_eq!(just_names(&events), ["before", "after-1", "after-2"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].line, 2);
        // At the last byte of the cut line (its trailing space is not counted).
        assert_eq!(skipped[0].column, r#"{"type": "ADDED", "object": {"kind":"#.len());
        assert_eq!(skipped[0].severity, Severity::Error);
        assert!(
            skipped[0]
                .reason
                .starts_with("incomplete document (starts at line 2): EOF while parsing"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn syntax_error_inside_pretty_document_is_reported_at_its_position() {
        // Break the second document: `"phase": "Running"` -> `"phase": Running"`.
        let broken = PRETTY.replacen("\"phase\": \"Running\"", "\"phase\": Running\"", 1);
        let (events, skipped) = run(broken.as_bytes());
        assert_eq!(
            names(&events),
            vec![
                (EventType::Added, "web-0".to_owned()),
                (EventType::Deleted, "settings".to_owned()),
            ]
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let line = line_of(&broken, "\"phase\": Running");
        assert_eq!(line, 42); // checked by hand against PRETTY
        assert_eq!(skipped[0].line, line);
        // `      "phase": R`: the `R` is byte 16 of the line.
        assert_eq!(skipped[0].column, 16);
        assert!(skipped[0].reason.starts_with("malformed document: expected value"));
    }

    #[test]
    fn a_pretty_document_cut_short_by_the_next_is_reported_and_the_next_is_read() {
        let cut = &pretty("ADDED", "cut")[..30];
        let first = pretty("ADDED", "a");
        let input = format!("{first}\n{cut}\n{}\n", pretty("DELETED", "c"));
        let (events, skipped) = run(input.as_bytes());
        assert_eq!(just_names(&events), ["a", "c"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let start = first.lines().count() + 1;
        let expected = serde_json::from_str::<Value>(cut).unwrap_err();
        assert_eq!(
            (skipped[0].line, skipped[0].column),
            (start + expected.line() - 1, expected.column())
        );
        assert!(
            skipped[0].reason.starts_with(&format!(
                "incomplete document (starts at line {start}): EOF while parsing"
            )),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn positions_agree_with_serde_json() {
        // For a broken first document, our absolute position must equal the one serde_json
        // reports for the whole input.
        for input in [
            "{\n  \"type\": \"ADDED\",\n  \"object\": {\"a\": tru}\n}\n",
            "{\"type\" \"ADDED\"}\n",
            "{\n  \"a\": [1, 2,, 3]\n}\n",
            "{\n  \"a\": 1 2\n}\n",
            "  {\"a\": 1 2}\n",
            "\t{\"a\": 1}  {\"b\": 2}\n",
        ] {
            let expected = serde_json::from_str::<Value>(input).unwrap_err();
            let (_, skipped) = run(input.as_bytes());
            assert_eq!(
                (skipped[0].line, skipped[0].column),
                (expected.line(), expected.column()),
                "{input:?}"
            );
        }
    }

    #[test]
    fn positions_are_absolute_across_documents_and_compaction() {
        // Many good documents, then a broken one: the line must count all of the input, even
        // though framed bytes were dropped meanwhile.
        let mut framer = LineFramer::new();
        let mut events = 0;
        let mut feed = |framer: &mut LineFramer, data: &str| {
            for chunk in data.as_bytes().chunks(3) {
                framer.push(chunk);
                while let Some(item) = framer.next_item() {
                    match item {
                        Item::Event(_) => events += 1,
                        Item::Skipped(s) => return Some(s),
                    }
                }
            }
            None
        };
        for i in 0..200 {
            assert!(feed(&mut framer, &format!("{}\n", pod("ADDED", &i.to_string()))).is_none());
        }
        assert!(framer.buf.len() < 400, "buffer was not compacted: {}", framer.buf.len());
        let skipped = feed(&mut framer, "  {\"type\": ADDED}\n").expect("reported");
        assert_eq!(events, 200);
        assert_eq!((skipped.line, skipped.column), (201, 12));
    }

    #[test]
    fn garbage_lines_are_each_skipped_with_their_position() {
        let input = format!(
            "Error from server (NotFound): the server doesn't have a resource type \"podz\"\n\
             some more noise {{ not json\n  {}\n{}\n}}\n{}\n",
            pod("ADDED", "a"),
            pod("ADDED", "b"),
            pod("ADDED", "c"),
        );
        let (events, skipped) = run(input.as_bytes());
        // "a" is indented, but alone on its line: a document like any other.
        assert_eq!(just_names(&events), ["a", "b", "c"]);
        let at: Vec<(usize, usize)> = skipped.iter().map(|s| (s.line, s.column)).collect();
        // The two lines of noise, and the stray "}" line after "b".
        assert_eq!(at, [(1, 1), (2, 1), (5, 1)]);
        assert!(
            skipped
                .iter()
                .all(|s| s.reason.starts_with("malformed document: expected value"))
        );
    }

    #[test]
    fn unusable_documents_are_skipped_with_their_line() {
        let docs = [
            pod("ADDED", "first"),
            json!({"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "12"}}}).to_string(),
            json!({"type": "ERROR", "object": {"kind": "Status", "status": "Failure", "message": "too old resource version: 1 (5)", "code": 410}}).to_string(),
            json!({"type": "SYNC", "object": {}}).to_string(),
            json!({"object": {"kind": "Pod"}}).to_string(),
            json!({"type": 7, "object": {}}).to_string(),
            json!({"type": "ADDED"}).to_string(),
            json!({"type": "MODIFIED", "object": "pod"}).to_string(),
            "[1, 2, 3]".to_owned(),
            "\"just a string\"".to_owned(),
            "42".to_owned(),
            pod("DELETED", "last"),
        ];
        let input = docs.join("\n");
        let (events, skipped) = run(input.as_bytes());
        assert_eq!(
            names(&events),
            vec![
                (EventType::Added, "first".to_owned()),
                (EventType::Deleted, "last".to_owned()),
            ]
        );
        let summary: Vec<(usize, Severity)> = skipped.iter().map(|s| (s.line, s.severity)).collect();
        assert_eq!(
            summary,
            vec![
                (2, Severity::Debug),
                (3, Severity::Warn),
                (4, Severity::Error),
                (5, Severity::Error),
                (6, Severity::Error),
                (7, Severity::Error),
                (8, Severity::Error),
                (9, Severity::Error),
                (10, Severity::Error),
                (11, Severity::Error),
            ]
        );
        assert!(skipped.iter().all(|s| s.column == 1));
        assert!(skipped[1].reason.contains("too old resource version"));
        assert!(skipped[2].reason.contains("\"SYNC\""));
        assert!(skipped[3].reason.contains("missing \"type\""));
        assert!(skipped[4].reason.contains("not a string"));
        assert!(skipped[5].reason.contains("missing \"object\""));
        assert!(skipped[6].reason.contains("\"object\" is a string"));
        assert!(skipped[7].reason.contains("an array"));
        assert!(skipped[9].reason.contains("a number"));
    }

    #[test]
    fn truncated_last_document() {
        // Cut after `    },` of the last document.
        let input = &PRETTY[..PRETTY.rfind("\"data\"").unwrap()];
        let (events, skipped) = run(input.as_bytes());
        assert_eq!(events.len(), 2);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let last_line = input.trim_end().lines().count();
        assert_eq!(skipped[0].line, last_line);
        assert_eq!(skipped[0].column, input.trim_end().lines().last().unwrap().len());
        let start = line_of(input, "DELETED") - 1;
        assert_eq!(start, 46);
        assert!(
            skipped[0].reason.starts_with(&format!(
                "incomplete document (starts at line {start}): EOF while parsing"
            )),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn empty_and_whitespace_only_input() {
        assert_eq!(run(b""), (vec![], vec![]));
        assert_eq!(run(b" \n\r\n\t  \n"), (vec![], vec![]));
        assert_eq!(run(b" \n\t "), (vec![], vec![]));
    }

    #[test]
    fn invalid_utf8() {
        let mut input = pod("ADDED", "a").into_bytes();
        input.extend_from_slice(b"\n{\"type\": \"ADDED\", \"object\": {\"name\": \"\xff\xfe\"}}\n");
        input.extend_from_slice(b"\xc3\x28 \x80\n");
        input.extend_from_slice(pod("DELETED", "b").as_bytes());
        let (events, skipped) = run(&input);
        assert_eq!(just_names(&events), ["a", "b"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let bad_line = input.split(|&b| b == b'\n').nth(1).unwrap();
        let expected = serde_json::from_slice::<Value>(bad_line).unwrap_err();
        assert_eq!(expected.line(), 1);
        assert_eq!((skipped[0].line, skipped[0].column), (2, expected.column()));
        assert!(skipped[0].reason.contains("unicode"), "{}", skipped[0].reason);
        // The line of bytes that are not text at all is garbage of its own.
        assert_eq!((skipped[1].line, skipped[1].column), (3, 1));
        assert!(
            skipped[1].reason.starts_with("malformed document"),
            "{}",
            skipped[1].reason
        );
    }

    #[test]
    fn large_document() {
        let big = "x".repeat(300_000);
        let doc = serde_json::to_string_pretty(
            &json!({"type": "ADDED", "object": {"metadata": {"name": "big"}, "data": {"blob": big}}}),
        )
        .unwrap();
        let input = format!("{doc}\n{}\n", pod("DELETED", "small"));
        for chunk in [4096, 64 * 1024, input.len()] {
            let (events, skipped) = frame(LineFramer::new(), input.as_bytes(), chunk);
            assert_eq!(skipped, vec![]);
            assert_eq!(just_names(&events), ["big", "small"]);
            assert_eq!(events[0].object["data"]["blob"].as_str().map(str::len), Some(300_000));
        }
    }

    /// `input` through a framer that keeps documents of up to 64 bytes, in reads small enough for
    /// the limit to be met while a document is still arriving; all read sizes must agree.
    fn run_limited(input: &str) -> (Vec<Event>, Vec<Skipped>) {
        let first = frame(LineFramer::with_limit(64), input.as_bytes(), 1);
        for chunk in [3, 7, 16] {
            assert_eq!(
                frame(LineFramer::with_limit(64), input.as_bytes(), chunk),
                first,
                "in reads of {chunk}"
            );
        }
        first
    }

    #[test]
    fn a_line_over_the_limit_is_reported_once_and_dropped() {
        let long = json!({"type": "ADDED", "object": {"data": "x".repeat(200)}}).to_string();
        let (a, b) = (
            r#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#,
            r#"{"type":"ADDED","object":{"metadata":{"name":"b"}}}"#,
        );
        let (events, skipped) = run_limited(&format!("{a}\n  {long}\n{b}\n"));
        assert_eq!(just_names(&events), ["a", "b"]);
        assert_eq!(
            skipped,
            [Skipped::new(
                2,
                3,
                Severity::Error,
                "line longer than 64 bytes".to_owned()
            )]
        );
    }

    #[test]
    fn a_pretty_document_over_the_limit_is_reported_once_and_dropped_to_its_end() {
        let big = serde_json::to_string_pretty(&json!({"type": "ADDED", "object": {
            "metadata": {"name": "big"}, "data": {"a": "x".repeat(30), "b": "y".repeat(30), "c": "z".repeat(30)}}}))
        .unwrap();
        let b = r#"{"type":"ADDED","object":{"metadata":{"name":"b"}}}"#;
        let (events, skipped) = run_limited(&format!("{b}\n{big}\n{b}\n"));
        assert_eq!(just_names(&events), ["b", "b"]);
        assert_eq!(
            skipped,
            [Skipped::new(
                2,
                1,
                Severity::Error,
                "document larger than 64 bytes".to_owned()
            )]
        );

        // Cut short by the next document: dropped up to its `{` line.
        let cut = &big[..big.rfind("\"c\"").unwrap()];
        let (events, skipped) = run_limited(&format!("{cut}\n{b}\n"));
        assert_eq!(just_names(&events), ["b"]);
        assert_eq!(
            skipped,
            [Skipped::new(
                1,
                1,
                Severity::Error,
                "document larger than 64 bytes".to_owned()
            )]
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let alphabet = b"{}[]\":,\\ \n\r\tax01-.eE\xff\x80nulltrue";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..300 {
            let mut input = Vec::new();
            for _ in 0..(round % 97) * 3 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                input.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            for chunk in [1, 5, 4096] {
                for limit in [8, MAX_DOCUMENT_BYTES] {
                    let (events, skipped) = frame(LineFramer::with_limit(limit), &input, chunk);
                    assert!(events.len() + skipped.len() <= input.len());
                }
            }
        }
    }
}
