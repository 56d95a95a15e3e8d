//! A line framer for watch streams, the candidate to replace the bracket scanner of `json.rs`
//! (issue 18): documents are framed by lines and parsed by serde_json, with the same recovery.
//!
//! kubectl `-o json --watch --output-watch-events` prints each document pretty-printed: `{` alone
//! on a line at column 1, `}` alone at column 1 to close it, everything between indented;
//! `-o json` piped through `jq -c` or written by a program is one document per line. So:
//! - a line that is `{` alone starts a pretty-printed document, which ends with the next line
//!   that starts with `}`; a `{` at column 1 before that means the document was cut short, and
//!   the next one starts there;
//! - any other line that is not blank is one document.
//!
//! Unlike the scanner, two documents on one line are one malformed line, and a document must
//! start a line (leading blanks aside).

use super::json::{Item, Parser, Severity, classify, short_message};
use serde_json::Value;

/// A document larger than this is dropped, as by the scanner.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
enum State {
    Between,
    /// Inside a pretty-printed document that starts at `start` (an offset of the buffer, at
    /// line `line`).
    Pretty {
        start: usize,
        line: usize,
    },
}

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
}

fn blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    &bytes[..len]
}

impl LineFramer {
    pub(crate) fn new() -> Self {
        LineFramer {
            buf: Vec::new(),
            pos: 0,
            line: 1,
            searched: 0,
            state: State::Between,
            eof: false,
        }
    }

    /// The first byte still needed: the start of an unfinished document, or of the next line.
    fn keep_from(&self) -> usize {
        match self.state {
            State::Pretty { start, .. } => start,
            State::Between => self.pos,
        }
    }

    /// Appends bytes, first dropping those no longer needed once they are half of the buffer.
    pub(crate) fn push(&mut self, data: &[u8]) {
        let keep = self.keep_from();
        if keep > 0 && keep * 2 >= self.buf.len() {
            self.buf.drain(..keep);
            self.pos -= keep;
            if let State::Pretty { start, .. } = &mut self.state {
                *start -= keep;
            }
        }
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn finish(&mut self) {
        self.eof = true;
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

    /// The next event or skipped document; `None` when more bytes are needed (or, after
    /// [`LineFramer::finish`], when the input is exhausted).
    pub(crate) fn next_item(&mut self) -> Option<Item> {
        loop {
            let Some((start, end)) = self.next_line() else {
                return match self.state {
                    State::Pretty { start, line } if self.eof => {
                        self.state = State::Between;
                        Some(self.cut(start, self.buf.len(), line))
                    }
                    State::Pretty { start, line } if self.buf.len() - start > MAX_DOCUMENT_BYTES => {
                        self.state = State::Between;
                        self.pos = self.buf.len();
                        Some(Parser::skipped(
                            line,
                            1,
                            Severity::Error,
                            format!("document larger than {MAX_DOCUMENT_BYTES} bytes"),
                        ))
                    }
                    _ => None,
                };
            };
            let text = &self.buf[start..end];
            match self.state {
                State::Between if blank(text) => self.consume(end),
                State::Between if trim_end(text) == b"{" => {
                    self.state = State::Pretty { start, line: self.line };
                    self.consume(end);
                }
                State::Between => {
                    let indent = text.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
                    let item = self.parse(start + indent, end, self.line, indent + 1);
                    self.consume(end);
                    return Some(item);
                }
                State::Pretty { start: doc, line } if text.first() == Some(&b'}') => {
                    self.state = State::Between;
                    let item = self.parse(doc, end, line, 1);
                    self.consume(end);
                    return Some(item);
                }
                State::Pretty { start: doc, line } if text.first() == Some(&b'{') => {
                    // Cut short: this line starts the next document and is framed again.
                    self.state = State::Between;
                    return Some(self.cut(doc, start, line));
                }
                State::Pretty { .. } => self.consume(end),
            }
        }
    }

    /// Parses `buf[start..end]`, a document starting at `line` and `column`.
    fn parse(&self, start: usize, end: usize, line: usize, column: usize) -> Item {
        match serde_json::from_slice::<Value>(trim_end(&self.buf[start..end])) {
            Ok(value) => classify(value, line, column),
            Err(err) if err.is_eof() => {
                let what = format!("incomplete document (starts at line {line})");
                syntax_error(&err, line, column, &what)
            }
            Err(err) => syntax_error(&err, line, column, "malformed document"),
        }
    }

    /// A pretty-printed document that stops at `end` before its closing `}`.
    fn cut(&self, start: usize, end: usize, line: usize) -> Item {
        self.parse(start, end, line, 1)
    }
}

/// A serde_json error in a document starting at `line` and `column`, at its absolute position.
fn syntax_error(err: &serde_json::Error, line: usize, column: usize, what: &str) -> Item {
    let (line, column) = match err.line() {
        0 => (line, column),
        1 => (line, column - 1 + err.column()),
        n => (line + n - 1, err.column()),
    };
    Parser::skipped(line, column, Severity::Error, format!("{what}: {}", short_message(err)))
}

/// [`super::json::split_all`] with this framer.
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
    use super::super::json::{self, Item};
    use serde_json::json;

    fn outcomes(split: fn(&[u8], usize, &mut dyn FnMut(Item)), input: &str, chunk: usize) -> Vec<String> {
        let mut out = Vec::new();
        split(input.as_bytes(), chunk, &mut |item| {
            out.push(match item {
                Item::Event(event) => format!("{} {}", event.r#type, event.name().unwrap_or("?")),
                Item::Skipped(s) => format!("skip {}:{} {}", s.line, s.column, s.reason),
            })
        });
        out
    }

    fn scanner(input: &[u8], chunk: usize, each: &mut dyn FnMut(Item)) {
        json::split_all(input, chunk, each);
    }

    fn framer(input: &[u8], chunk: usize, each: &mut dyn FnMut(Item)) {
        super::split_all(input, chunk, each);
    }

    fn pod(ty: &str, name: &str) -> String {
        json!({"type": ty, "object": {"kind": "Pod", "metadata": {"name": name}}}).to_string()
    }

    fn pretty(ty: &str, name: &str) -> String {
        serde_json::to_string_pretty(&json!({"type": ty, "object": {"kind": "Pod", "metadata": {"name": name}}}))
            .unwrap()
    }

    #[test]
    fn the_framer_agrees_with_the_scanner_on_what_kubectl_prints_and_its_accidents() {
        let broken = pretty("ADDED", "broken").replace("\"name\": \"broken\"", "\"name\": broken\"");
        let cut = &pretty("ADDED", "cut")[..30];
        let inputs = [
            format!("{}\n{}\n", pretty("ADDED", "a"), pretty("DELETED", "b")),
            format!(
                "{}\n\n  {}\r\n{}",
                pod("ADDED", "a"),
                pod("MODIFIED", "b"),
                pod("DELETED", "c")
            ),
            format!("{}\n{}\n{}\n", pretty("ADDED", "a"), broken, pretty("ADDED", "c")),
            format!("{}\n{cut}\n{}\n", pretty("ADDED", "a"), pretty("ADDED", "c")),
            format!(
                "{}\n{{\"type\": \"ADDED\", \"object\": {{\"kind\": \n{}\n",
                pod("ADDED", "a"),
                pod("ADDED", "c")
            ),
            format!("{}\n42\n[1]\n{}\n", pod("BOOKMARK", "a"), pod("ADDED", "c")),
            format!("{}\n{cut}", pretty("ADDED", "a")),
        ];
        for input in &inputs {
            for chunk in [1, 3, 4096] {
                assert_eq!(
                    outcomes(framer, input, chunk),
                    outcomes(scanner, input, chunk),
                    "{input:?} in reads of {chunk}"
                );
            }
        }
    }

    #[test]
    fn positions_agree_with_serde_json() {
        for input in [
            "{\n  \"type\": \"ADDED\",\n  \"object\": {\"a\": tru}\n}\n",
            "{\"type\" \"ADDED\"}\n",
            "{\n  \"a\": [1, 2,, 3]\n}\n",
            "  {\"a\": 1 2}\n",
        ] {
            let expected = serde_json::from_str::<serde_json::Value>(input).unwrap_err();
            let got = outcomes(framer, input, 5);
            assert!(
                got[0].starts_with(&format!("skip {}:{} ", expected.line(), expected.column())),
                "{input:?}: {got:?}"
            );
        }
    }
}
