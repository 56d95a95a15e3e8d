//! Incremental reader of Kubernetes watch streams.
//!
//! Reads what `kubectl get KIND -A --watch --output-watch-events -o json`
//! prints: a stream of JSON documents `{"type":"ADDED","object":{...}}`, either
//! pretty-printed (each document opens with `{` at column 1 and closes with `}`
//! at column 1) or one per line, separated by arbitrary whitespace.
//!
//! Design:
//! * [`JsonStream`] owns the reader and a [`Parser`]; it reads more bytes only
//!   when the parser cannot produce anything from what it already buffered, so
//!   an endless stream (stdin) is handled as documents arrive.
//! * [`Parser`] is synchronous and does no I/O. It keeps a consumed offset into
//!   its buffer and the absolute line/column of that offset (newlines of
//!   consumed bytes are counted exactly once). A small resumable scanner tracks
//!   bracket depth and string state to find where a document ends, so a
//!   document that arrives in many small reads is scanned once and parsed by
//!   serde_json once, when complete.
//! * A `{` at column 1 inside an unfinished document means that document was
//!   cut short (kubectl never prints that inside a document: nested values are
//!   indented and JSONL documents are single lines), so the broken document is
//!   reported and reading resumes at that `{` without waiting for more input.
//! * After a syntax error, input is discarded up to the next line that starts
//!   with `{`.
//! * Every skipped document is described by a [`Skipped`] (absolute 1-based
//!   line and column, like serde_json's, severity and reason) which the stream
//!   logs; tests assert on them.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::api::event::{Event, EventType};

/// How much spare room to offer each read.
const READ_CHUNK: usize = 64 * 1024;

/// A single document larger than this is dropped rather than buffered
/// without bound (Kubernetes objects are far smaller).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

/// How loudly a skipped document is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Debug,
    Warn,
    Error,
}

/// A document (or stretch of input) that did not yield an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Absolute 1-based line in the whole input.
    pub(crate) line: usize,
    /// Column (bytes) on that line, as serde_json counts it.
    pub(crate) column: usize,
    pub(crate) severity: Severity,
    pub(crate) reason: String,
}

impl Skipped {
    fn log(&self) {
        let (line, column, reason) = (self.line, self.column, &self.reason);
        match self.severity {
            Severity::Debug => {
                tracing::debug!(line, column, "watch stream: skipping document: {reason}")
            }
            Severity::Warn => {
                tracing::warn!(line, column, "watch stream: skipping document: {reason}")
            }
            Severity::Error => {
                tracing::error!(line, column, "watch stream: skipping document: {reason}")
            }
        }
    }
}

/// What the parser produced from its buffer.
#[derive(Debug)]
pub(crate) enum Item {
    Event(Event),
    Skipped(Skipped),
}

/// Where the parser is between calls.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Between documents.
    Idle,
    /// Inside a document starting with `{` or `[` at the consumed offset;
    /// `scanned` bytes of it have been looked at already.
    Doc {
        scanned: usize,
        depth: usize,
        in_string: bool,
        escape: bool,
    },
    /// A top-level value that does not start with `{` or `[` (a scalar or
    /// garbage): taken up to the end of its line.
    Line { scanned: usize },
    /// After a syntax error: discarding up to the next line starting with `{`.
    Skipping,
}

/// How a scanned document ended.
enum End {
    /// Brackets balanced after this many bytes.
    Complete(usize),
    /// Cut short: the document's bytes stop here (a `{` at column 1, the end
    /// of input, or the size limit).
    Cut(usize),
}

/// Synchronous, incremental splitter and parser of watch documents.
pub(crate) struct Parser {
    buf: Vec<u8>,
    /// Bytes of `buf` before this offset are consumed.
    pos: usize,
    /// Absolute 1-based line of `buf[pos]`.
    line: usize,
    /// Bytes between the start of that line and `buf[pos]` (0-based column).
    col0: usize,
    mode: Mode,
    /// No more bytes will be pushed.
    eof: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let len = bytes.iter().rposition(|&b| !is_ws(b)).map_or(0, |i| i + 1);
    &bytes[..len]
}

/// serde_json's message without its " at line L column C" suffix.
pub(crate) fn short_message(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match full.strip_suffix(&suffix) {
        Some(short) => short.to_owned(),
        None => full,
    }
}

use crate::api::resource::json_type as kind_of;

impl Parser {
    fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            line: 1,
            col0: 0,
            mode: Mode::Idle,
            eof: false,
        }
    }

    /// Appends bytes (used by tests; the stream reads straight into `buf`).
    #[cfg(test)]
    fn push(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// Drops consumed bytes once they are at least half of the buffer, so the
    /// cost of moving the rest is paid for by what was consumed.
    fn compact(&mut self) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Consumes `n` bytes, counting their newlines.
    fn advance(&mut self, n: usize) {
        let bytes = &self.buf[self.pos..self.pos + n];
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                self.line += bytes.iter().filter(|&&b| b == b'\n').count();
                self.col0 = n - last - 1;
            }
            None => self.col0 += n,
        }
        self.pos += n;
    }

    /// Absolute position of a serde_json error in a slice starting at `pos`.
    fn error_position(&self, err: &serde_json::Error) -> (usize, usize) {
        match err.line() {
            0 => (self.line, self.col0 + 1),
            1 => (self.line, self.col0 + err.column()),
            n => (self.line + n - 1, err.column()),
        }
    }

    pub(crate) fn skipped(line: usize, column: usize, severity: Severity, reason: String) -> Item {
        Item::Skipped(Skipped {
            line,
            column,
            severity,
            reason,
        })
    }

    /// The next event or skipped document from buffered bytes; `None` when
    /// more bytes are needed (or, after `eof`, when the input is exhausted).
    fn next_item(&mut self) -> Option<Item> {
        loop {
            match self.mode {
                Mode::Idle => {
                    let ws = self.buf[self.pos..].iter().take_while(|&&b| is_ws(b)).count();
                    self.advance(ws);
                    let &first = self.buf.get(self.pos)?;
                    self.mode = if first == b'{' || first == b'[' {
                        Mode::Doc {
                            scanned: 0,
                            depth: 0,
                            in_string: false,
                            escape: false,
                        }
                    } else {
                        Mode::Line { scanned: 0 }
                    };
                }
                Mode::Skipping => {
                    let rest = &self.buf[self.pos..];
                    let found = if self.col0 == 0 && rest.first() == Some(&b'{') {
                        Some(0)
                    } else {
                        rest.windows(2).position(|w| w == b"\n{").map(|i| i + 1)
                    };
                    match found {
                        Some(i) => {
                            self.advance(i);
                            self.mode = Mode::Idle;
                        }
                        None => {
                            // Keep nothing: a trailing '\n' leaves col0 == 0,
                            // so a '{' arriving next is still seen at column 1.
                            self.advance(rest.len());
                            return None;
                        }
                    }
                }
                Mode::Line { scanned } => {
                    let rest = &self.buf[self.pos..];
                    let end = match rest[scanned..].iter().position(|&b| b == b'\n') {
                        Some(i) => scanned + i,
                        None if self.eof => rest.len(),
                        None if rest.len() > MAX_DOCUMENT_BYTES => {
                            let item = Self::skipped(
                                self.line,
                                self.col0 + 1,
                                Severity::Error,
                                format!("line longer than {MAX_DOCUMENT_BYTES} bytes"),
                            );
                            self.mode = Mode::Skipping;
                            return Some(item);
                        }
                        None => {
                            self.mode = Mode::Line { scanned: rest.len() };
                            return None;
                        }
                    };
                    let text = trim_end(&rest[..end]);
                    let item = match serde_json::from_slice::<Value>(text) {
                        Ok(value) => {
                            self.mode = Mode::Idle;
                            self.classify(value)
                        }
                        Err(err) => {
                            self.mode = Mode::Skipping;
                            self.syntax_error(&err, "malformed document")
                        }
                    };
                    self.advance(end);
                    return Some(item);
                }
                Mode::Doc {
                    mut scanned,
                    mut depth,
                    mut in_string,
                    mut escape,
                } => {
                    let rest = &self.buf[self.pos..];
                    let mut end = None;
                    while let Some(&b) = rest.get(scanned) {
                        if b == b'{' && scanned > 0 && rest[scanned - 1] == b'\n' {
                            end = Some(End::Cut(scanned));
                            break;
                        }
                        scanned += 1;
                        if in_string {
                            if escape {
                                escape = false;
                            } else if b == b'\\' {
                                escape = true;
                            } else if b == b'"' {
                                in_string = false;
                            }
                        } else {
                            match b {
                                b'"' => in_string = true,
                                b'{' | b'[' => depth += 1,
                                b'}' | b']' => {
                                    depth = depth.saturating_sub(1);
                                    if depth == 0 {
                                        end = Some(End::Complete(scanned));
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    let end = match end {
                        Some(end) => end,
                        None if self.eof => End::Cut(rest.len()),
                        None if scanned > MAX_DOCUMENT_BYTES => {
                            let item = Self::skipped(
                                self.line,
                                self.col0 + 1,
                                Severity::Error,
                                format!("document larger than {MAX_DOCUMENT_BYTES} bytes"),
                            );
                            self.advance(1);
                            self.mode = Mode::Skipping;
                            return Some(item);
                        }
                        None => {
                            self.mode = Mode::Doc {
                                scanned,
                                depth,
                                in_string,
                                escape,
                            };
                            return None;
                        }
                    };
                    return Some(self.finish_doc(end));
                }
            }
        }
    }

    /// Parses a scanned document and consumes it.
    fn finish_doc(&mut self, end: End) -> Item {
        let rest = &self.buf[self.pos..];
        match end {
            End::Complete(len) => match serde_json::from_slice::<Value>(&rest[..len]) {
                Ok(value) => {
                    let item = self.classify(value);
                    self.advance(len);
                    self.mode = Mode::Idle;
                    item
                }
                Err(err) => {
                    let item = self.syntax_error(&err, "malformed document");
                    // Resume at the next line starting with '{' after this
                    // document's opening brace.
                    self.advance(1);
                    self.mode = Mode::Skipping;
                    item
                }
            },
            End::Cut(len) => {
                // Trailing whitespace is not part of the document: without it
                // an EOF error points at the last byte that was there.
                let item = match serde_json::from_slice::<Value>(trim_end(&rest[..len])) {
                    Ok(value) => self.classify(value),
                    Err(err) if err.is_eof() => {
                        let what = format!("incomplete document (starts at line {})", self.line);
                        self.syntax_error(&err, &what)
                    }
                    Err(err) => self.syntax_error(&err, "malformed document"),
                };
                // What follows is a '{' at column 1 or the end of input.
                self.advance(len);
                self.mode = Mode::Idle;
                item
            }
        }
    }

    fn syntax_error(&self, err: &serde_json::Error, what: &str) -> Item {
        let (line, column) = self.error_position(err);
        Self::skipped(line, column, Severity::Error, format!("{what}: {}", short_message(err)))
    }

    /// Turns a well-formed document starting at the consumed offset into an
    /// event, or says why it is not one.
    fn classify(&self, value: Value) -> Item {
        classify(value, self.line, self.col0 + 1)
    }
}

/// A well-formed document starting at `line` and `column` as an event, or why it is not one.
pub(crate) fn classify(value: Value, line: usize, column: usize) -> Item {
    {
        let skip = |severity, reason: String| Parser::skipped(line, column, severity, reason);
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                return skip(
                    Severity::Error,
                    format!("top-level value is {}, not an object", kind_of(&other)),
                );
            }
        };
        let name = match map.get("type") {
            Some(Value::String(name)) => name.as_str(),
            Some(other) => return skip(Severity::Error, format!("\"type\" is {}, not a string", kind_of(other))),
            None => return skip(Severity::Error, "missing \"type\"".to_owned()),
        };
        let r#type = match EventType::parse(name) {
            Some(t) => t,
            None if name == "BOOKMARK" => {
                return skip(Severity::Debug, "BOOKMARK event".to_owned());
            }
            None if name == "ERROR" => {
                let message = map
                    .get("object")
                    .and_then(|o| o.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)");
                return skip(Severity::Warn, format!("ERROR event: {message}"));
            }
            None => {
                return skip(Severity::Error, format!("unknown event type {name:?}"));
            }
        };
        match map.remove("object") {
            Some(object @ Value::Object(_)) => Item::Event(Event::new(r#type, object)),
            Some(other) => skip(
                Severity::Error,
                format!("\"object\" is {}, not an object", kind_of(&other)),
            ),
            None => skip(Severity::Error, "missing \"object\"".to_owned()),
        }
    }
}

/// Splits `input` as if it arrived in reads of `chunk` bytes, handing every item to `each`: the
/// splitter alone, for the bench that compares it with [`super::json_lines`].
pub(crate) fn split_all(input: &[u8], chunk: usize, mut each: impl FnMut(Item)) {
    let mut parser = Parser::new();
    for piece in input.chunks(chunk.max(1)) {
        parser.compact();
        parser.buf.extend_from_slice(piece);
        while let Some(item) = parser.next_item() {
            each(item);
        }
    }
    parser.eof = true;
    while let Some(item) = parser.next_item() {
        each(item);
    }
}

/// Reads and parses watch events from a blocking reader, on the calling thread, handing over
/// each read's events at once: `emit` gets them in batches (one batch per read that produced
/// events) and returns `false` to stop. Ends at the end of input (`Ok`) or with the read error.
pub(crate) fn parse_blocking(
    mut reader: impl std::io::Read,
    mut emit: impl FnMut(Vec<Event>) -> bool,
) -> std::io::Result<()> {
    let mut parser = Parser::new();
    loop {
        let mut batch = Vec::new();
        while let Some(item) = parser.next_item() {
            match item {
                Item::Event(event) => batch.push(event),
                Item::Skipped(skipped) => skipped.log(),
            }
        }
        if !batch.is_empty() && !emit(batch) {
            return Ok(());
        }
        if parser.eof {
            return Ok(());
        }
        parser.compact();
        let filled = parser.buf.len();
        parser.buf.resize(filled + READ_CHUNK, 0);
        let read = loop {
            match reader.read(&mut parser.buf[filled..]) {
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(n) => {
                parser.buf.truncate(filled + n);
                parser.eof = n == 0;
            }
            Err(err) => {
                parser.buf.truncate(filled);
                tracing::error!(line = parser.line, "watch stream: read failed, stopping: {err}");
                return Err(err);
            }
        }
    }
}

/// Reads watch events from a byte stream as they arrive.
pub(crate) struct JsonStream {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    parser: Parser,
    /// A read failed: the stream is over.
    failed: bool,
    /// Why, until the owner asks.
    failure: Option<std::io::Error>,
    /// Everything skipped so far, for tests to check.
    #[cfg(test)]
    skipped: Vec<Skipped>,
}

impl JsonStream {
    pub(crate) fn new(reader: Box<dyn AsyncRead + Send + Unpin>) -> Self {
        Self {
            reader,
            parser: Parser::new(),
            failed: false,
            failure: None,
            #[cfg(test)]
            skipped: Vec::new(),
        }
    }

    /// Why the stream ended early: the read error, once (`None` after a real end of input).
    pub(crate) fn take_failure(&mut self) -> Option<std::io::Error> {
        self.failure.take()
    }

    /// The next event among the bytes already read, without reading more.
    pub(crate) fn try_next(&mut self) -> Option<Event> {
        while !self.failed {
            match self.parser.next_item()? {
                Item::Event(event) => return Some(event),
                Item::Skipped(skipped) => self.skip(skipped),
            }
        }
        None
    }

    fn skip(&mut self, skipped: Skipped) {
        skipped.log();
        #[cfg(test)]
        self.skipped.push(skipped);
    }

    /// The next valid event, or None at end of input (or after an
    /// unrecoverable read error, which is logged and kept for [`JsonStream::take_failure`]).
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if self.failed {
                return None;
            }
            match self.parser.next_item() {
                Some(Item::Event(event)) => return Some(event),
                Some(Item::Skipped(skipped)) => {
                    self.skip(skipped);
                    continue;
                }
                None if self.parser.eof => return None,
                None => {}
            }
            self.parser.compact();
            self.parser.buf.reserve(READ_CHUNK);
            match self.reader.read_buf(&mut self.parser.buf).await {
                Ok(0) => self.parser.eof = true,
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    tracing::error!(line = self.parser.line, "watch stream: read failed, stopping: {err}");
                    self.failed = true;
                    self.failure = Some(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncWriteExt, ReadBuf};

    /// Yields its data in reads of 1 to 7 bytes, then optionally an error.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_at_end: bool,
    }

    impl Trickle {
        fn new(data: &[u8]) -> Self {
            Self {
                data: data.to_vec(),
                at: 0,
                step: 0,
                fail_at_end: false,
            }
        }
    }

    impl AsyncRead for Trickle {
        fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if this.at == this.data.len() && this.fail_at_end {
                return Poll::Ready(Err(io::Error::other("connection reset")));
            }
            this.step += 1;
            let want = 1 + (this.step * 5) % 7;
            let n = want.min(this.data.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// Reads everything with one big reader; returns events and skips.
    async fn run_reader(reader: Box<dyn AsyncRead + Send + Unpin>) -> (Vec<Event>, Vec<Skipped>) {
        let mut stream = JsonStream::new(reader);
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event);
        }
        // Still over when asked again.
        assert!(stream.next().await.is_none());
        (events, stream.skipped)
    }

    async fn run(input: &[u8]) -> (Vec<Event>, Vec<Skipped>) {
        let whole = run_reader(Box::new(io::Cursor::new(input.to_vec()))).await;
        let trickled = run_reader(Box::new(Trickle::new(input))).await;
        assert_eq!(whole, trickled, "tiny reads must give the same result");
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

    /// 1-based line of the first line containing `needle`.
    fn line_of(input: &str, needle: &str) -> usize {
        input.lines().position(|l| l.contains(needle)).expect("needle") + 1
    }

    fn pod(ty: &str, name: &str) -> String {
        json!({"type": ty, "object": {"kind": "Pod", "metadata": {"name": name, "namespace": "default"}}}).to_string()
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

    #[tokio::test]
    async fn pretty_printed_documents() {
        let (events, skipped) = run(PRETTY.as_bytes()).await;
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

    #[tokio::test]
    async fn jsonl_and_arbitrary_whitespace() {
        let input = format!(
            "{}\n{}\r\n\n   {}  \t{}",
            pod("ADDED", "a"),
            pod("MODIFIED", "b"),
            pod("DELETED", "c"),
            pod("ADDED", "d"),
        );
        let (events, skipped) = run(input.as_bytes()).await;
        assert_eq!(skipped, vec![]);
        let got: Vec<String> = names(&events).into_iter().map(|(_, n)| n).collect();
        assert_eq!(got, ["a", "b", "c", "d"]);
        assert_eq!(events[2].r#type, EventType::Deleted);
    }

    #[tokio::test]
    async fn malformed_document_in_the_middle() {
        let input = format!(
            "{}\n{}\n{}\n{}\n",
            pod("ADDED", "before"),
            r#"{"type": "ADDED", "object": {"kind": "#,
            pod("MODIFIED", "after-1"),
            pod("DELETED", "after-2"),
        );
        let (events, skipped) = run(input.as_bytes()).await;
        let got: Vec<String> = names(&events).into_iter().map(|(_, n)| n).collect();
        assert_eq!(got, ["before", "after-1", "after-2"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].line, 2);
        // At the last byte of the cut line (its trailing space is not counted).
        assert_eq!(skipped[0].column, r#"{"type": "ADDED", "object": {"kind":"#.len());
        assert_eq!(skipped[0].severity, Severity::Error);
        assert!(skipped[0].reason.contains("incomplete"), "{}", skipped[0].reason);
    }

    #[tokio::test]
    async fn syntax_error_inside_pretty_document_is_reported_at_its_position() {
        // Break the second document: `"phase": "Running"` -> `"phase": Running"`.
        let broken = PRETTY.replacen("\"phase\": \"Running\"", "\"phase\": Running\"", 1);
        let (events, skipped) = run(broken.as_bytes()).await;
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
    fn positions_agree_with_serde_json() {
        // For a broken first document, our absolute position must equal the
        // one serde_json reports for the whole input.
        let inputs = [
            "{\n  \"type\": \"ADDED\",\n  \"object\": {\"a\": tru}\n}\n",
            "{\"type\" \"ADDED\"}\n",
            "{\n  \"a\": [1, 2,, 3]\n}\n",
            "{\n  \"a\": 1 2\n}\n",
        ];
        for input in inputs {
            let expected = serde_json::from_str::<Value>(input).unwrap_err();
            let mut parser = Parser::new();
            parser.push(input.as_bytes());
            parser.eof = true;
            match parser.next_item() {
                Some(Item::Skipped(s)) => {
                    assert_eq!((s.line, s.column), (expected.line(), expected.column()), "{input:?}");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn positions_are_absolute_across_documents_and_compaction() {
        // Many good documents, then a broken one: the line must count all of
        // the input, even though consumed bytes were dropped meanwhile.
        let mut parser = Parser::new();
        let mut events = 0;
        let mut feed = |parser: &mut Parser, data: &str| {
            for chunk in data.as_bytes().chunks(3) {
                parser.push(chunk);
                while let Some(item) = parser.next_item() {
                    match item {
                        Item::Event(_) => events += 1,
                        Item::Skipped(s) => return Some(s),
                    }
                }
            }
            None
        };
        for i in 0..200 {
            assert!(feed(&mut parser, &format!("{}\n", pod("ADDED", &i.to_string()))).is_none());
        }
        assert!(parser.buf.len() < 400, "buffer was not compacted: {}", parser.buf.len());
        let skipped = feed(&mut parser, "  {\"type\": ADDED}\n").expect("reported");
        assert_eq!(events, 200);
        assert_eq!((skipped.line, skipped.column), (201, 12));
    }

    #[tokio::test]
    async fn garbage_lines_are_skipped() {
        let input = format!(
            "Error from server (NotFound): the server doesn't have a resource type \"podz\"\n\
             some more noise {{ not json\n  {}\n{}\n}}\n{}\n",
            pod("ADDED", "a"),
            pod("ADDED", "b"),
            pod("ADDED", "c"),
        );
        let (events, skipped) = run(input.as_bytes()).await;
        let got: Vec<String> = names(&events).into_iter().map(|(_, n)| n).collect();
        // "a" is indented, so it is inside the skipped region; "b" starts a line.
        assert_eq!(got, ["b", "c"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!((skipped[0].line, skipped[0].column), (1, 1));
        assert!(skipped[0].reason.contains("expected value"));
        // The stray "}" line after "b".
        assert_eq!((skipped[1].line, skipped[1].column), (5, 1));
    }

    #[tokio::test]
    async fn unusable_documents_are_skipped_with_their_line() {
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
        let (events, skipped) = run(input.as_bytes()).await;
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

    #[tokio::test]
    async fn truncated_last_document() {
        // Cut after `    },` of the last document.
        let input = &PRETTY[..PRETTY.rfind("\"data\"").unwrap()];
        let (events, skipped) = run(input.as_bytes()).await;
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

    #[tokio::test]
    async fn empty_and_whitespace_only_input() {
        assert_eq!(run(b"").await, (vec![], vec![]));
        assert_eq!(run(b" \n\r\n\t  \n").await, (vec![], vec![]));
    }

    #[tokio::test]
    async fn invalid_utf8() {
        let mut input = pod("ADDED", "a").into_bytes();
        input.extend_from_slice(b"\n{\"type\": \"ADDED\", \"object\": {\"name\": \"\xff\xfe\"}}\n");
        input.extend_from_slice(b"\xc3\x28 \x80\n");
        input.extend_from_slice(pod("DELETED", "b").as_bytes());
        let (events, skipped) = run(&input).await;
        let got: Vec<String> = names(&events).into_iter().map(|(_, n)| n).collect();
        assert_eq!(got, ["a", "b"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let bad_line = input.split(|&b| b == b'\n').nth(1).unwrap();
        let expected = serde_json::from_slice::<Value>(bad_line).unwrap_err();
        assert_eq!(expected.line(), 1);
        assert_eq!((skipped[0].line, skipped[0].column), (2, expected.column()));
        assert!(skipped[0].reason.contains("unicode"), "{}", skipped[0].reason);
    }

    #[tokio::test]
    async fn read_error_ends_the_stream() {
        let mut reader = Trickle::new(format!("{}\n{}", pod("ADDED", "a"), pod("ADDED", "b")).as_bytes());
        reader.fail_at_end = true;
        let mut stream = JsonStream::new(Box::new(reader));
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            events.push(event);
        }
        let failure = stream.take_failure().expect("the read error is kept");
        assert_eq!(failure.to_string(), "connection reset");
        assert!(stream.take_failure().is_none(), "and handed over once");
        let skipped = stream.skipped;
        // "b" closed its brackets before the read failed.
        let got: Vec<String> = names(&events).into_iter().map(|(_, n)| n).collect();
        assert_eq!(got, ["a", "b"]);
        assert_eq!(skipped, vec![]);

        let mut reader = Trickle::new(b"{\"type\": \"ADDED\", \"obj");
        reader.fail_at_end = true;
        assert_eq!(run_reader(Box::new(reader)).await, (vec![], vec![]));
    }

    #[tokio::test]
    async fn events_arrive_before_the_input_ends() {
        let (mut writer, reader) = tokio::io::duplex(4096);
        let mut stream = JsonStream::new(Box::new(reader));
        writer.write_all(pod("ADDED", "a").as_bytes()).await.unwrap();
        writer.write_all(b"\n").await.unwrap();
        let first = stream.next().await.expect("first event while open");
        assert_eq!(first.object["metadata"]["name"], "a");
        writer.write_all(pod("DELETED", "a").as_bytes()).await.unwrap();
        drop(writer);
        assert_eq!(stream.next().await.unwrap().r#type, EventType::Deleted);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn ready_events_are_taken_without_reading() {
        let input = format!("{}\nnot json\n{}\n", pod("ADDED", "a"), pod("DELETED", "a"));
        let mut stream = JsonStream::new(Box::new(io::Cursor::new(input.into_bytes())));
        assert!(stream.try_next().is_none(), "nothing was read yet");
        assert_eq!(stream.next().await.unwrap().r#type, EventType::Added);
        // The first read took the whole input: the rest is served from the buffer.
        assert_eq!(stream.try_next().unwrap().r#type, EventType::Deleted);
        assert!(stream.try_next().is_none());
        assert_eq!(stream.skipped.len(), 1);
        assert!(stream.next().await.is_none());
        assert!(stream.take_failure().is_none(), "a real end is no failure");
    }

    #[tokio::test]
    async fn large_document() {
        let big = "x".repeat(300_000);
        let doc = serde_json::to_string_pretty(
            &json!({"type": "ADDED", "object": {"metadata": {"name": "big"}, "data": {"blob": big}}}),
        )
        .unwrap();
        let input = format!("{doc}\n{}\n", pod("DELETED", "small"));
        let (events, skipped) = run_reader(Box::new(io::Cursor::new(input.into_bytes()))).await;
        assert_eq!(skipped, vec![]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].object["data"]["blob"].as_str().map(str::len), Some(300_000));
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
            for chunk_size in [1, 5, 4096] {
                let mut parser = Parser::new();
                for chunk in input.chunks(chunk_size) {
                    parser.push(chunk);
                    while parser.next_item().is_some() {}
                }
                parser.eof = true;
                let mut guard = 0;
                while parser.next_item().is_some() {
                    guard += 1;
                    assert!(guard < 10_000);
                }
            }
        }
    }
}
