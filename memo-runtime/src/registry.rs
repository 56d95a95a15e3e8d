//! What the attribute macros register, and the checks run on it before an operator starts.

use crate::inject::{Context, Outcome};
use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed handler future borrowing its context.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a handler's wrapper is called: sync handlers are called in place, without boxing.
#[derive(Clone, Copy)]
pub enum Invoke {
    /// A plain `fn` handler.
    Sync(fn(&mut Context<'_>) -> Outcome),
    /// An `async fn` handler.
    Async(for<'a, 'b> fn(&'a mut Context<'b>) -> BoxFuture<'a, Outcome>),
}

/// Which events of a resource an event handler wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// `event = "KIND"`: every event.
    Any,
    /// `create = "KIND"`: `ADDED` events.
    Added,
    /// `update = "KIND"`: `MODIFIED` events.
    Modified,
    /// `delete = "KIND"`: `DELETED` events.
    Deleted,
}

impl EventFilter {
    pub(crate) fn accepts(self, r#type: crate::EventType) -> bool {
        use crate::EventType::*;
        matches!(
            (self, r#type),
            (EventFilter::Any, _)
                | (EventFilter::Added, Added)
                | (EventFilter::Modified, Modified)
                | (EventFilter::Deleted, Deleted)
        )
    }

    fn attribute_key(self) -> &'static str {
        match self {
            EventFilter::Any => "event",
            EventFilter::Added => "create",
            EventFilter::Modified => "update",
            EventFilter::Deleted => "delete",
        }
    }
}

/// When a handler runs.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    /// Once, before any event is handled.
    Startup,
    /// Once, after the last event was handled.
    Cleanup,
    /// On events of resources matching `resource`.
    Event {
        /// The resource selector as written (`"KopfExample"`, `"kopfexamples.kopf.dev"`).
        resource: &'static str,
        /// Which events.
        filter: EventFilter,
    },
    /// Periodically for every existing resource matching `resource`.
    Timer {
        /// The resource selector as written.
        resource: &'static str,
        /// Time between the end of one run and the start of the next.
        interval: Duration,
        /// Time between the resource's appearance and the first run.
        initial_delay: Duration,
    },
}

impl Trigger {
    pub(crate) fn is_startup(&self) -> bool {
        matches!(self, Trigger::Startup)
    }

    pub(crate) fn is_cleanup(&self) -> bool {
        matches!(self, Trigger::Cleanup)
    }
}

/// A memo type as a handler asks for it, for the startup check that it matches the operator's.
#[derive(Clone, Copy, Debug)]
pub struct MemoType {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
}

impl MemoType {
    /// The memo type `M`.
    pub fn of<M: 'static>() -> Self {
        MemoType {
            id: TypeId::of::<M>(),
            name: std::any::type_name::<M>(),
        }
    }
}

/// The first delay before a failed create, update or delete handler is retried, when its
/// attribute gives no `backoff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// The longest delay between retries: the doubling stops here (jitter may add a quarter more).
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How a handler's failures are retried and how long an async handler may run:
/// `#[handler(create = "KIND", retries = 5, backoff = "2s", timeout = "30s")]`.
///
/// Only create, update and delete handlers are retried; `timeout` applies to every async handler
/// that gives one (a timed-out event handler or timer is a failure, logged, not retried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first call; `None`: unlimited, as in kopf.
    pub retries: Option<u32>,
    /// The delay before the first retry; each later one doubles, up to [`MAX_BACKOFF`], plus a
    /// random jitter of up to a quarter.
    pub backoff: Duration,
    /// How long an async handler may run before it is cancelled, a temporary failure.
    pub timeout: Option<Duration>,
}

impl RetryPolicy {
    /// Unlimited retries from [`DEFAULT_BACKOFF`], no timeout.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        retries: None,
        backoff: DEFAULT_BACKOFF,
        timeout: None,
    };
}

/// One handler, as `#[handler]` registers it. Built by the macro as a `const` expression.
pub struct Registration {
    /// The name used in logs: the explicit `id`, or the function's path.
    pub id: &'static str,
    /// Whether `id` was given explicitly (duplicates of those are errors).
    pub explicit_id: bool,
    /// `module_path!()` of the handler.
    pub module_path: &'static str,
    /// Source file of the handler.
    pub file: &'static str,
    /// Source line of the handler's `fn` token.
    pub line: u32,
    /// Source column of the handler's `fn` token.
    pub column: u32,
    /// When it runs.
    pub trigger: Trigger,
    /// The memo type the handler asks for, if it asks for a memo.
    pub memo_type: Option<fn() -> MemoType>,
    /// The component whose shared memory the handler gets (`None`: the bot's).
    pub component: Option<&'static str>,
    /// Whether the handler asks for `shared` (its memory is prepared before it runs).
    pub uses_shared: bool,
    /// The generated wrapper.
    pub invoke: Invoke,
    /// `retries`, `backoff` and `timeout`.
    pub retry: RetryPolicy,
}

inventory::collect!(Registration);

/// One memory preparer, as `#[prepare_memory]` registers it.
pub struct Preparer {
    /// The function's path, for logs.
    pub id: &'static str,
    /// `module_path!()` of the preparer.
    pub module_path: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
    /// Source column.
    pub column: u32,
    /// The component whose memory it prepares (`None`: the bot's).
    pub component: Option<&'static str>,
    /// The generated wrapper.
    pub invoke: for<'a, 'b> fn(&'a mut Context<'b>) -> BoxFuture<'a, Outcome>,
}

inventory::collect!(Preparer);

impl Preparer {
    pub(crate) fn location(&self) -> Location {
        Location {
            file: self.file,
            line: self.line,
            column: self.column,
        }
    }
}

/// Every registered preparer, in the same stable order as handlers.
pub(crate) fn registered_preparers() -> Vec<&'static Preparer> {
    let mut preparers: Vec<&'static Preparer> = inventory::iter::<Preparer>().collect();
    preparers.sort_by(|a, b| {
        (a.module_path, a.line, a.column, a.file, a.id).cmp(&(b.module_path, b.line, b.column, b.file, b.id))
    });
    preparers
}

impl Registration {
    pub(crate) fn location(&self) -> Location {
        Location {
            file: self.file,
            line: self.line,
            column: self.column,
        }
    }

    pub(crate) fn describe_trigger(&self) -> String {
        match self.trigger {
            Trigger::Startup => "startup".to_owned(),
            Trigger::Cleanup => "cleanup".to_owned(),
            Trigger::Event { resource, filter } => {
                format!("{} = {resource:?}", filter.attribute_key())
            }
            Trigger::Timer { resource, .. } => format!("timer = {resource:?}"),
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .field("trigger", &self.trigger)
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

/// A source location, printed as `file:line:column`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    file: &'static str,
    line: u32,
    column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One reason the registered handlers cannot run, found by [`Operator::run`](crate::Operator::run)
/// before it handles anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    code: &'static str,
    message: String,
}

impl Problem {
    /// The stable code of this kind of problem (`"M0001"`, ...), documented in the crate docs.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What is wrong, naming the handlers and their locations.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

/// Every registered handler, in the documented stable order: module path, then line, then column.
pub(crate) fn registered() -> Vec<&'static Registration> {
    let mut handlers: Vec<&'static Registration> = inventory::iter::<Registration>().collect();
    handlers.sort_by(|a, b| {
        (a.module_path, a.line, a.column, a.file, a.id).cmp(&(b.module_path, b.line, b.column, b.file, b.id))
    });
    handlers
}

/// The registered handlers' count, for tests and diagnostics.
///
/// ```standalone_crate
/// // A program of its own (doctests are merged into one otherwise) registers no handlers.
/// assert_eq!(memo_runtime::registered_handler_count(), 0);
/// ```
pub fn registered_handler_count() -> usize {
    inventory::iter::<Registration>().count()
}

/// Checks what the macros cannot see: that every handler's memo type is the operator's, and that
/// explicit ids are unique across the whole program.
pub(crate) fn validate(
    handlers: &[&'static Registration],
    preparers: &[&'static Preparer],
    memo: MemoType,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for preparer in preparers {
        if let Some(component) = preparer.component
            && !handlers.iter().any(|handler| handler.component == Some(component))
        {
            problems.push(Problem {
                    code: "M0004",
                    message: format!(
                        "preparer `{}` at {} prepares component `{component}`, but no handler has `component = \"{component}\"`; \
                         fix the component name, or remove the preparer",
                        preparer.id,
                        preparer.location(),
                    ),
                });
        }
    }
    for handler in handlers {
        if let Some(memo_type) = handler.memo_type {
            let wanted = memo_type();
            if wanted.id != memo.id {
                problems.push(Problem {
                    code: "M0001",
                    message: format!(
                        "handler `{}` at {} asks for a memo of type `{}`, but the operator's memo is `{}`; \
                         pass a `{}` with `Operator::memo(...)`, or change the handler's `memo` parameter",
                        handler.id,
                        handler.location(),
                        wanted.name,
                        memo.name,
                        wanted.name,
                    ),
                });
            }
        }
        if let Trigger::Timer { interval, .. } = handler.trigger
            && interval.is_zero()
        {
            problems.push(Problem {
                code: "M0003",
                message: format!("timer `{}` at {} has a zero interval", handler.id, handler.location()),
            });
        }
    }
    let mut explicit: Vec<&&'static Registration> = handlers.iter().filter(|h| h.explicit_id).collect();
    explicit.sort_by_key(|h| h.id);
    for pair in explicit.windows(2) {
        if pair[0].id == pair[1].id {
            problems.push(Problem {
                code: "M0002",
                message: format!(
                    "two handlers have the id `{}`: {} at {} and {} at {}; ids name handlers in logs and must be unique",
                    pair[0].id,
                    pair[0].describe_trigger(),
                    pair[0].location(),
                    pair[1].describe_trigger(),
                    pair[1].location(),
                ),
            });
        }
    }
    problems
}
