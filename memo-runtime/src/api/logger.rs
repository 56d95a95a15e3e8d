//! A per-resource logger handed to handlers that ask for `logger`.

use crate::api::resource::{Resource, ResourceKey};
use std::cell::RefCell;
use std::fmt::Display;
use std::marker::PhantomData;

thread_local! {
    /// The resource whose handler runs on this thread, inside its enabled `handler` span.
    static SHOWN: RefCell<Shown> = const {
        RefCell::new(Shown {
            kind: String::new(),
            key: None,
        })
    };
}

/// A copy of a [`Resource`]: the kind is kept from call to call (a thread serves few kinds), the
/// key is an `Arc`'s count.
struct Shown {
    kind: String,
    /// `None` when no handler span shows a resource on this thread.
    key: Option<ResourceKey>,
}

/// Marks, while it lives, that `resource`'s handler runs on this thread inside its `handler`
/// span, which shows the resource: a [`Logger`] about it then adds no fields of its own. Made
/// around each run of the handler's code (each poll of an async handler), inside the span.
pub(crate) struct InSpan {
    // Stays on the thread whose mark it set.
    _not_send: PhantomData<*const ()>,
}

impl InSpan {
    pub(crate) fn enter(resource: Resource<'_>) -> Self {
        SHOWN.with_borrow_mut(|shown| {
            if shown.kind != resource.kind {
                shown.kind.clear();
                shown.kind.push_str(resource.kind);
            }
            shown.key = Some(resource.key.clone());
        });
        InSpan { _not_send: PhantomData }
    }
}

impl Drop for InSpan {
    fn drop(&mut self) {
        // Not the mark before it, if marks nested: a logger then repeats what a span shows,
        // rather than leave out what none shows.
        SHOWN.with_borrow_mut(|shown| shown.key = None);
    }
}

/// Emits `tracing` events that carry the resource they are about.
///
/// Handlers ask for it with a `logger: &Logger` parameter. Resource handlers get a logger whose
/// events carry the resource's `kind`, `namespace` and `name`; startup and cleanup handlers get
/// one without them. During a handler call about the same resource, the `handler` span the call
/// runs in carries them already, and the logger's events leave them to it, so that a line shows
/// them once; anywhere else (a thread or a task the handler started, another resource's handler,
/// a span filtered out) the events carry them as fields of their own.
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
    ($level:expr_2021, $self:ident, $message:ident) => {
        match (&$self.name, &$self.namespace) {
            _ if $self.shown_by_span() => tracing::event!(target: "memo", $level, "{}", $message),
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

    /// Whether the `handler` span this thread is in right now shows this logger's resource.
    fn shown_by_span(&self) -> bool {
        let Some(name) = self.name.as_deref() else {
            return false;
        };
        // `try_with`: a logger may be used by a thread-local's destructor.
        SHOWN
            .try_with(|shown| {
                let Ok(shown) = shown.try_borrow() else {
                    return false;
                };
                shown.key.as_ref().is_some_and(|key| {
                    self.kind.as_deref() == Some(&*shown.kind)
                        && self.namespace.as_deref() == key.namespace()
                        && name == key.name()
                })
            })
            .unwrap_or(false)
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
