//! `--log-format text` without colors: the fields of events and spans written as
//! tracing-subscriber's default formatter writes them (`message name="value" count=3`), without
//! its per-field styling machinery.
//!
//! The formatter runs for every span when it is made, whether or not anything is logged inside
//! it: with a span around every handler call, its cost is paid per call. tracing-subscriber's
//! `DefaultFields` paints each field name through `nu_ansi_term` even when colors are off, and
//! escapes every string char by char; this writes plain strings in one piece.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The field formatter of `run()`'s text logs when standard error is not a terminal.
pub(crate) struct TextFields;

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = TextVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct TextVisitor<'writer> {
    writer: Writer<'writer>,
    empty: bool,
    result: fmt::Result,
}

impl TextVisitor<'_> {
    /// Starts a field: a space before every one but the first; `None` if it is not written.
    fn name(&mut self, field: &Field) -> Option<&'static str> {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return None;
        }
        if self.empty {
            self.empty = false;
        } else {
            self.result = self.writer.write_char(' ');
        }
        Some(name.strip_prefix("r#").unwrap_or(name))
    }

    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let Some(name) = self.name(field) else {
            return;
        };
        if name != "message" {
            // Piece by piece: cheaper than one `write!` of `{name}={value}`.
            self.result = self.writer.write_str(name).and_then(|()| self.writer.write_char('='));
        }
        if self.result.is_ok() {
            self.result = self.writer.write_fmt(value);
        }
    }
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let Some(name) = self.name(field) else {
            return;
        };
        self.result = if name == "message" {
            self.writer.write_str(value)
        } else {
            write_quoted(&mut self.writer, name, value)
        };
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            Some(source) => self.write(
                field,
                format_args!("{value} {}.sources={}", field.name(), Sources(source)),
            ),
            None => self.write(field, format_args!("{value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// An error's chain of sources, as `[outer, inner]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&format_args!("{error}"));
            next = error.source();
        }
        list.finish()
    }
}

/// `name="value"`, as `{:?}` writes a string: one piece when nothing in it needs escaping.
fn write_quoted(writer: &mut Writer<'_>, name: &str, value: &str) -> fmt::Result {
    let plain = value
        .bytes()
        .all(|byte| (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\');
    if plain {
        writer.write_str(name)?;
        writer.write_str("=\"")?;
        writer.write_str(value)?;
        writer.write_char('"')
    } else {
        write!(writer, "{name}={value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::DefaultFields;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Chained(std::io::Error);

    impl fmt::Display for Chained {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the effect")
        }
    }

    impl std::error::Error for Chained {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// A span and an event in it, as a subscriber without colors writes them with `fields`.
    fn render<F>(fields: F) -> String
    where
        F: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .fmt_fields(fields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "handler",
                handler = %"app::greet",
                kind = "KopfExample",
                namespace = "with \"quotes\" and \\",
                name = "ünïcode\n",
                count = 3u64,
                escaped = %crate::observe::escaped::Escaped("evil\n2026 ERROR FORGED \u{1b}[31m"),
            );
            let _entered = span.enter();
            let error = std::io::Error::other("it broke");
            tracing::info!(
                r#type = "ADDED",
                ok = true,
                ratio = -2.5f64,
                error = &error as &(dyn std::error::Error + 'static),
                debugged = ?Some(1),
                "hello {}",
                1
            );
            tracing::warn!(message = "a str message", n = -4i64);
            let chained = Chained(std::io::Error::other("the cause"));
            tracing::error!(error = &chained as &(dyn std::error::Error + 'static), "failed");
        });
        let text = buffer.0.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn writes_what_the_default_formatter_writes_without_colors() {
        let ours = render(TextFields);
        assert_eq!(ours, render(DefaultFields::new()));
        assert!(
            ours.contains(r#"handler{handler=app::greet kind="KopfExample" namespace="with \"quotes\" and \\" name="ünïcode\n" count=3 escaped=evil\n2026 ERROR FORGED \u{1b}[31m}"#),
            "{ours}"
        );
        assert!(ours.contains("hello 1 type=\"ADDED\" ok=true ratio=-2.5"), "{ours}");
        assert!(ours.contains("a str message n=-4"), "{ours}");
        // A resource's identity from the handler span cannot start a line or color the rest.
        assert!(ours.lines().all(|line| !line.starts_with("2026")), "{ours}");
        assert!(!ours.contains('\u{1b}'), "{ours}");
        assert!(ours.contains("error=the effect error.sources=[the cause]"), "{ours}");
    }
}
