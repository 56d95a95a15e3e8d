//! `--log-format json`: one JSON object a line, with the fields of the spans an event is in (a
//! handler's span: handler, kind, namespace, name) merged into its own `fields`.
//!
//! tracing-subscriber's JSON format puts span fields under `span`/`spans` next to the span's own
//! `name`, which collides with a resource's `name` field; a log collector wants one flat object.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// `{"timestamp", "level", "target", "fields": {"message", ...the spans' and the event's fields}}`.
pub(crate) struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                // `JsonFields` wrote them as a JSON object; inner spans' fields win.
                if let Ok(Value::Object(mut span_fields)) = serde_json::from_str::<Value>(recorded) {
                    if is_handler_span(span.metadata()) {
                        identity_as_it_is(&mut span_fields);
                    }
                    fields.extend(span_fields);
                }
            }
        }
        event.record(&mut Fields(&mut fields));
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let metadata = event.metadata();
        let line = serde_json::json!({
            "timestamp": timestamp,
            "level": metadata.level().as_str(),
            "target": metadata.target(),
            "fields": fields,
        });
        writeln!(writer, "{line}")
    }
}

/// Whether a span is the one memo runs every handler call in.
fn is_handler_span(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.name() == "handler" && metadata.target() == "memo"
}

/// The handler span shows the resource's identity escaped for text logs; JSON's encoding makes
/// any string safe, so a JSON line carries the name itself.
fn identity_as_it_is(span_fields: &mut Map<String, Value>) {
    for key in ["kind", "namespace", "name"] {
        if let Some(Value::String(text)) = span_fields.get_mut(key)
            && let std::borrow::Cow::Owned(raw) = crate::observe::escaped::unescape(text)
        {
            *text = raw;
        }
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // A message's `format_args!` prints as its text.
        self.0.insert(field.name().to_owned(), format!("{value:?}").into());
    }
}
