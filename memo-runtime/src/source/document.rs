//! What one framed watch document yields: an event, or why it is skipped and where (absolute
//! 1-based line and column, as serde_json counts them), which the stream sources log.

use serde_json::Value;

use crate::api::event::{Event, EventType};
use crate::api::resource::json_type as kind_of;
use crate::api::shard::Sharding;

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
    pub(crate) fn new(line: usize, column: usize, severity: Severity, reason: String) -> Self {
        Skipped {
            line,
            column,
            severity,
            reason,
        }
    }

    pub(crate) fn log(&self) {
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

/// What one document of the input gave.
#[derive(Debug)]
pub(crate) enum Item {
    Event(Event),
    Skipped(Skipped),
}

/// What a document says of its type and its object's uid, read without building anything else.
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default, rename = "type")]
    r#type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<PeekObject<'a>>,
}

#[derive(serde::Deserialize)]
struct PeekObject<'a> {
    #[serde(borrow, default)]
    metadata: Option<PeekMetadata<'a>>,
}

#[derive(serde::Deserialize)]
struct PeekMetadata<'a> {
    #[serde(borrow, default)]
    uid: Option<std::borrow::Cow<'a, str>>,
}

/// Whether `text` is the document of a resource another replica handles: its uid read, nothing
/// else kept. A document without a readable uid is not (it is parsed, and judged, as any).
pub(crate) fn elsewhere(text: &[u8], shard: &Sharding) -> bool {
    let Ok(peek) = serde_json::from_slice::<Peek<'_>>(text) else {
        return false;
    };
    match peek
        .object
        .and_then(|object| object.metadata)
        .and_then(|metadata| metadata.uid)
    {
        Some(uid) if !uid.is_empty() => !shard.owns(&uid),
        _ => false,
    }
}

/// The uid of the object of `text` if the document is an event that [`parse`] makes an `Event`
/// of, with a usable uid: what the router needs of it, read without building the object.
/// `None` for anything else, which is parsed whole where it is judged.
pub(crate) fn routable_uid(text: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    // serde reads a struct from an array too; `parse` wants an object.
    if text.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let peek = serde_json::from_slice::<Peek<'_>>(text).ok()?;
    EventType::parse(peek.r#type.as_deref()?)?;
    peek.object?.metadata?.uid.filter(|uid| !uid.is_empty())
}

/// Parses `text`, a document starting at `line` and `column` of the input.
pub(crate) fn parse(text: &[u8], line: usize, column: usize) -> Item {
    match serde_json::from_slice::<Value>(text) {
        Ok(value) => classify(value, line, column),
        Err(err) if err.is_eof() => {
            let what = format!("incomplete document (starts at line {line})");
            syntax_error(&err, line, column, &what)
        }
        Err(err) => syntax_error(&err, line, column, "malformed document"),
    }
}

/// A serde_json error in a document starting at `line` and `column`, at its absolute position.
fn syntax_error(err: &serde_json::Error, line: usize, column: usize, what: &str) -> Item {
    let (at_line, at_column) = match err.line() {
        0 => (line, column),
        1 => (line, column - 1 + err.column()),
        n => (line + n - 1, err.column()),
    };
    let message = short_message(err);
    // serde_json only says this after a complete value: here, one that shares its line with more
    // input, which the framer never splits (documents go one per line).
    let reason = if message == "trailing characters" {
        format!(
            "{what}: {message} after a complete document (one document per line, or a pretty-printed \
             one from a `{{` line to a `}}` line)"
        )
    } else {
        format!("{what}: {message}")
    };
    Item::Skipped(Skipped::new(at_line, at_column, Severity::Error, reason))
}

/// serde_json's message without its " at line L column C" suffix.
fn short_message(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match full.strip_suffix(&suffix) {
        Some(short) => short.to_owned(),
        None => full,
    }
}

/// A well-formed document starting at `line` and `column` as an event, or why it is not one.
fn classify(value: Value, line: usize, column: usize) -> Item {
    let skip = |severity, reason: String| Item::Skipped(Skipped::new(line, column, severity, reason));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routable_uid_is_read_only_from_documents_that_become_events() {
        let uid = |text: &str| routable_uid(text.as_bytes()).map(|uid| uid.into_owned());
        let event = |r#type: &str, metadata: &str| {
            format!(r#"{{"type":"{type}","object":{{"kind":"Pod","metadata":{metadata},"spec":{{"a":[1,2]}}}}}}"#)
        };
        // Some only where parsing the whole document gives an event with that uid.
        let routable = |text: &str, expected: &str| {
            assert_eq!(uid(text).as_deref(), Some(expected), "{text}");
            let Item::Event(event) = parse(text.as_bytes(), 1, 1) else {
                panic!("{text} is an event")
            };
            assert_eq!(event.uid(), Some(expected));
        };
        for r#type in ["ADDED", "MODIFIED", "DELETED"] {
            routable(&event(r#type, r#"{"name":"a","uid":"u-1"}"#), "u-1");
        }
        routable(&event("ADDED", r#"{"uid":"u\u002d2"}"#), "u-2");
        routable(r#"  {"object":{"metadata":{"uid":"u"}},"type":"ADDED"}"#, "u");
        for text in [
            event("BOOKMARK", r#"{"uid":"u"}"#),
            event("ERROR", r#"{"uid":"u"}"#),
            event("ADDED", r#"{"name":"no-uid"}"#),
            event("ADDED", r#"{"uid":""}"#),
            event("ADDED", r#"{"uid":7}"#),
            r#"{"type":"ADDED","object":[1]}"#.to_owned(),
            r#"{"object":{"metadata":{"uid":"u"}}}"#.to_owned(),
            r#"{"type":"ADDED","type":"ADDED","object":{"metadata":{"uid":"u"}}}"#.to_owned(),
            r#"["ADDED",{"metadata":{"uid":"u"}}]"#.to_owned(),
            r#"{"type":"ADDED","object":{"metadata":{"uid":"u"}}"#.to_owned(),
            r#"{"type":"ADDED","object":{"metadata":{"uid":"u"}}} {}"#.to_owned(),
        ] {
            // Parsed whole where it is judged (the duplicate `type` included: serde_json keeps
            // the last).
            assert_eq!(uid(&text), None, "{text}");
        }
    }
}
