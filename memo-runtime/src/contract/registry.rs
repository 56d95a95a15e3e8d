//! What the attribute macros register: handlers and preparers, with where they are and how to
//! call them.

use crate::api::event::EventType;
use crate::contract::context::Context;
use crate::contract::outcome::Outcome;
use crate::observe::in_flight::Running;
use serde_json::Value;
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
    /// `delete = "KIND"`: `DELETED` events, or with a finalizer the deletion's start.
    Deleted,
    /// `resume = "KIND"`: once per process for each object that existed before it started.
    Resume,
}

impl EventFilter {
    pub(crate) fn accepts(self, r#type: EventType) -> bool {
        use EventType::*;
        matches!(
            (self, r#type),
            (EventFilter::Any, _)
                | (EventFilter::Added, Added)
                | (EventFilter::Modified, Modified)
                | (EventFilter::Deleted, Deleted)
                | (EventFilter::Resume, Added | Modified)
        )
    }

    fn attribute_key(self) -> &'static str {
        match self {
            EventFilter::Any => "event",
            EventFilter::Added => "create",
            EventFilter::Modified => "update",
            EventFilter::Deleted => "delete",
            EventFilter::Resume => "resume",
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
    /// Whether it is an `update` handler's: one that runs only when its object's essence changed.
    pub(crate) fn is_update(&self) -> bool {
        matches!(
            self,
            Trigger::Event {
                filter: EventFilter::Modified,
                ..
            }
        )
    }

    /// Whether a failure is retried: create, update, delete and resume handlers are; event
    /// handlers (fire-and-forget, as kopf's `on.event`), timers, startup and cleanup are not.
    pub(crate) fn is_retried(&self) -> bool {
        matches!(
            self,
            Trigger::Event {
                filter: EventFilter::Added | EventFilter::Modified | EventFilter::Deleted | EventFilter::Resume,
                ..
            }
        )
    }

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
    /// The delay before the first retry; each later one doubles, up to five minutes, plus a
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

/// A `when = path` filter: called with the object's body, the handler runs if it returns `true`.
pub type When = fn(&Value) -> bool;

/// Which objects a handler runs for, beyond its trigger: `labels`, `annotations`, `when` and
/// `field` as the attribute gives them (the macro checked the selectors and the field's path).
#[derive(Clone, Copy, Debug)]
pub struct Filters {
    /// A label selector the object must match.
    pub labels: Option<&'static str>,
    /// An annotation selector the object must match.
    pub annotations: Option<&'static str>,
    /// A function of the body that must return `true`.
    pub when: Option<When>,
    /// For `update` handlers: the dotted path of the field whose change runs the handler.
    pub field: Option<&'static str>,
}

impl Filters {
    /// No filter: the handler runs on every event its trigger selects.
    pub const NONE: Filters = Filters {
        labels: None,
        annotations: None,
        when: None,
        field: None,
    };

    pub(crate) fn filters_objects(&self) -> bool {
        self.labels.is_some() || self.annotations.is_some() || self.when.is_some()
    }
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
    /// Whether the handler asks for `labels` (a view of them is made for its calls).
    pub uses_labels: bool,
    /// Whether the handler asks for `annotations`.
    pub uses_annotations: bool,
    /// Whether the handler asks for `patch` (it gets one of its own for each call).
    pub uses_patch: bool,
    /// Whether the handler asks for `recorder`.
    pub uses_recorder: bool,
    /// Whether the handler asks for `client` (the operator must have one to start).
    pub uses_client: bool,
    /// `optional` (delete handlers): it holds no finalizer, and runs on `DELETED`.
    pub optional: bool,
    /// The generated wrapper.
    pub invoke: Invoke,
    /// `retries`, `backoff` and `timeout`.
    pub retry: RetryPolicy,
    /// `labels`, `annotations`, `when` and `field`.
    pub filters: Filters,
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

/// A stop that abandons a running handler names it by what it was registered as.
impl Running for Registration {
    fn id(&self) -> &'static str {
        self.id
    }

    fn trigger(&self) -> String {
        self.describe_trigger()
    }

    fn location(&self) -> String {
        Registration::location(self).to_string()
    }
}

/// Registrations for the runtime's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    fn ok(_: &mut Context<'_>) -> Outcome {
        Ok(())
    }

    /// A sync `create` handler of `Test` objects that does nothing.
    pub(crate) const fn registration(id: &'static str) -> Registration {
        Registration {
            id,
            explicit_id: true,
            module_path: "tests",
            file: "tests.rs",
            line: 1,
            column: 1,
            trigger: Trigger::Event {
                resource: "Test",
                filter: EventFilter::Added,
            },
            memo_type: None,
            component: None,
            uses_shared: false,
            uses_labels: false,
            uses_annotations: false,
            uses_patch: true,
            uses_recorder: false,
            uses_client: false,
            optional: false,
            invoke: Invoke::Sync(ok),
            retry: RetryPolicy::DEFAULT,
            filters: Filters::NONE,
        }
    }
}
