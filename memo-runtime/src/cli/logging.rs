//! The log subscriber `run_with_args` installs: text or JSON lines on standard error.

use crate::cli::args::LogFormat;
use crate::observe::json_lines::JsonLines;
use crate::observe::text_fields::TextFields;
use tracing_subscriber::EnvFilter;

/// The level filter: `RUST_LOG` if set, else by `-v`/`-q`.
fn filter(verbosity: i8) -> EnvFilter {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        return filter;
    }
    EnvFilter::new(match verbosity {
        ..=-1 => "error",
        0 => "info",
        1 => "debug",
        _ => "trace",
    })
}

/// Installs the global subscriber, unless the program installed one already.
pub(crate) fn init(format: LogFormat, verbosity: i8) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::io::stderr);
    let _ = match format {
        // Colored on a terminal; elsewhere (a container's log) plain, with the leaner fields.
        LogFormat::Text if std::io::IsTerminal::is_terminal(&std::io::stderr()) => builder.with_ansi(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).fmt_fields(TextFields).try_init(),
        // `{"timestamp", "level", "target", "fields": {"message", ...the spans' and the event's fields}}`.
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLines)
            .try_init(),
    };
}
