//! A per-resource logger handed to handlers that ask for `logger`.

use std::fmt::Display;

/// Emits `tracing` events that carry the resource they are about.
///
/// Handlers ask for it with a `logger: &Logger` parameter. Resource handlers get a logger whose
/// events carry the resource's `kind`, `namespace` and `name` fields; startup and cleanup handlers
/// get one without them.
///
/// ```
/// use memo_runtime::prelude::*;
///
/// #[handler(create = "KopfExample")]
/// fn greet(logger: &Logger) {
///     logger.info("a new example appeared");
/// }
/// # fn main() {}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logger {
    kind: Option<Box<str>>,
    namespace: Option<Box<str>>,
    name: Option<Box<str>>,
}

// `tracing` needs the level as a constant at each call site, hence a macro.
macro_rules! log_at {
    ($level:expr, $self:ident, $message:ident) => {
        match (&$self.name, &$self.namespace) {
            (Some(name), Some(namespace)) => tracing::event!(
                target: "memo",
                $level,
                kind = $self.kind.as_deref().unwrap_or_default(),
                namespace = &**namespace,
                name = &**name,
                "{}",
                $message
            ),
            (Some(name), None) => tracing::event!(
                target: "memo",
                $level,
                kind = $self.kind.as_deref().unwrap_or_default(),
                name = &**name,
                "{}",
                $message
            ),
            (None, _) => tracing::event!(target: "memo", $level, "{}", $message),
        }
    };
}

impl Logger {
    /// A logger for the operator itself (no resource fields).
    pub fn operator() -> Self {
        Logger::default()
    }

    /// A logger for one resource.
    ///
    /// ```
    /// let logger = memo_runtime::Logger::resource("KopfExample", Some("default"), "ex1");
    /// assert_eq!(logger.name(), Some("ex1"));
    /// ```
    pub fn resource(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Logger {
            kind: Some(kind.into()),
            namespace: namespace.map(Into::into),
            name: Some(name.into()),
        }
    }

    /// The resource's kind, if this logger is about a resource.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The resource's namespace, if it has one.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The resource's name, if this logger is about a resource.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Logs at `DEBUG` level.
    pub fn debug(&self, message: impl Display) {
        log_at!(tracing::Level::DEBUG, self, message);
    }

    /// Logs at `INFO` level.
    pub fn info(&self, message: impl Display) {
        log_at!(tracing::Level::INFO, self, message);
    }

    /// Logs at `WARN` level.
    pub fn warn(&self, message: impl Display) {
        log_at!(tracing::Level::WARN, self, message);
    }

    /// Logs at `ERROR` level.
    pub fn error(&self, message: impl Display) {
        log_at!(tracing::Level::ERROR, self, message);
    }
}
