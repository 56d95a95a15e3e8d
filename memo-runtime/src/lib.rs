//! **memo**: plain Rust functions become stateful event handlers.
//!
//! Attribute macros register functions as handlers of resource events (kopf-style: every
//! resource has a `memo`, a container of runtime-only values shared by its handlers) or of
//! startup, cleanup and timers; the runtime hands each handler exactly what its signature asks
//! for, by parameter name: `memo`, `name`, `namespace`, `uid`, `body`, `spec`, `status`,
//! `labels`, `annotations`, `event`, `logger`, botogram-style `shared` memory, and for `update`
//! handlers what changed (`old`, `new`, `diff`). Filters (`labels = "tier=web"`,
//! `annotations = …`, `when = is_big`, `field = "spec.size"`) choose the objects a handler runs
//! for.
//!
//! ```
//! use memo_runtime::prelude::*;
//!
//! #[handler(event = "KopfExample")]
//! fn pinged(memo: &mut Memo) {
//!     let n = memo.get::<u64>("counter").copied().unwrap_or(0);
//!     memo.insert("counter", n + 1);
//! }
//!
//! #[handler(timer = "KopfExample", interval = 10)]
//! fn tick(memo: &mut Memo, logger: &Logger) {
//!     let n = memo.get::<u64>("counter").copied().unwrap_or(0);
//!     logger.info(format!("{n} events have been received in 10 seconds."));
//!     memo.insert("counter", 0u64);
//! }
//! # fn main() {}
//! ```
//!
//! A binary runs them with [`run`] (flags like `kopf run`; without `--source FILE|-` it watches
//! the cluster, with the `kube` feature), or embeds an [`Operator`] in its own tokio program, fed
//! by `source::kubernetes` (feature `kube`), [`source::channel`],
//! [`source::json_file`] / [`source::json_reader`] (a `kubectl --watch` stream), any stream
//! ([`source::EventSource::from_stream`]) or several merged ([`source::EventSource::merge`]).
//!
//! # The memo hierarchy
//! The operator memo is [`Memo::new`] unless [`Operator::memo`] gives one (of any
//! `Clone + Send + Sync` type). Startup handlers fill it before any event. When a resource is
//! first seen, its memo is a `Clone` of the operator memo — for [`Memo`], a shallow copy in O(1):
//! shared objects (an `Arc<Mutex<_>>`, a channel sender) stay shared, rebinding a key stays local.
//! The resource memo is dropped after its `DELETED` handlers ran; an object re-created under the
//! same name (new uid) gets a fresh one. Cleanup handlers run last, on the operator memo.
//!
//! # Concurrency
//! All handlers of one resource — event handlers and its timers — run one at a time, in event
//! order; different resources run concurrently, up to [`Operator::workers`] at once. Each worker
//! is a lane that owns its resources (their memos, timers and retries); a new resource goes to
//! the least busy lane. On a multi-threaded runtime each lane is a thread of its own, so a sync
//! handler that blocks holds up its lane, never the runtime; with one worker the only lane reads
//! the source itself.
//!
//! # Stopping
//! The operator stops when its source ends (everything read is handled), when it fails (then
//! [`Operator::run`] returns the error), or on SIGTERM/SIGINT: then no new event starts and the
//! running handlers get [`Operator::shutdown_timeout`] to finish before they are abandoned and
//! named in the log. Cleanup handlers run last. A second signal stops at once
//! ([`Error::Forced`]).
//!
//! # Observing it
//! Every handler call runs in a `tracing` span carrying the handler and its resource, so a plain
//! `tracing::info!` in a handler says what it is about. [`Operator::liveness`] (the `--liveness`
//! flag) serves `/healthz` for probes and Prometheus `/metrics`.
//!
//! # Errors
//! Mistakes in handler signatures are compile errors (see [`handler`]). What needs the whole
//! program is checked when [`Operator::run`] starts, with the codes listed in [`diagnostics`].
//!
//! # Layout
//! The source (`memo-runtime/src`) is in layers, one folder each, listed bottom to top. A layer
//! imports only from itself and the layers below it, by module path, and no two of its files
//! import each other (`tests/layers.rs` checks both):
//!
//! 1. `api/`: what users name and every layer speaks: `error.rs` ([`Error`]), `event.rs`
//!    ([`Event`]), `memo/` ([`Memo`]), `logger.rs` ([`Logger`]), `problem.rs` ([`Problem`]),
//!    `signal.rs` ([`Signal`]), `shard.rs` ([`shard`]), `resource.rs` (a resource's identity),
//!    `patch.rs` ([`Patch`]), `diff.rs` ([`Diff`]), `pointer.rs` (JSON Pointers), `essence.rs`
//!    (what `update` handlers compare), `field.rs` (`field = "a.b"` values), `labels.rs`
//!    ([`Labels`], [`Annotations`]), `selector.rs` ([`Selector`]) and `selector_text.rs` (its
//!    parser, a copy of the macros'), `recorder.rs` ([`Recorder`]).
//! 2. `observe/`: what an operator tells about itself: `metrics.rs` (Prometheus counters),
//!    `health.rs` and `liveness.rs` (the `/healthz` and `/metrics` endpoint), `in_flight.rs`
//!    (what runs now, named when a stop abandons it) and `published.rs` (the lock-free record it
//!    is written to on every handler call), log formats (`json_lines.rs`,
//!    `text_fields.rs`, `escaped.rs`).
//! 3. `store/` and `shared/`: where shared memory lives ([`store::Store`], in-process, Redis)
//!    and the [`Shared`] handle over it, with its locks and its preparers (`shared/preparers.rs`).
//! 4. `contract/`: what the macros' expansions are written against (reachable only through
//!    `__private`): `registry.rs` (registrations, with their filters), `context.rs`, `inject.rs`
//!    (one trait per injectable; those reading the object in `inject_object.rs`, an update's in
//!    `inject_change.rs`), `seen.rs` (what an `update` handler sees changed), `outcome.rs` (a
//!    call's result, classified for retrying).
//! 5. `plan/`: from registrations to what runs them: `validate.rs` (the checks of
//!    [`diagnostics`]), `catalog.rs` (selectors and per-kind plans), `plural.rs`, `bound.rs` (a
//!    handler bound to its shared memory and counters), `gate.rs` (its object filters, parsed).
//! 6. `exec/`: running handlers: `invoke.rs` (calling one), `catch.rs` (panics), `prepare.rs`
//!    (preparing shared memory once), `retry.rs` (retry policy), `dedicated.rs` (the threads
//!    handlers run on), `stop.rs` (grace period and forced stop).
//! 7. `source/`: where events come from ([`source`]: channel, `kubectl --watch` JSON, streams,
//!    merging, the Kubernetes API); the JSON is framed by lines (`framer.rs`) into documents,
//!    each an event or a skip with its position (`document.rs`): read on a thread of its own
//!    (`reader_thread.rs`), a document is parsed by the lane that handles it (`unparsed.rs`;
//!    with several lanes the router reads only its uid); the in-process channel's queue is taken
//!    whole (`channel.rs`); `kubernetes/` also writes patches back (`writer.rs`) and posts
//!    Events (`events.rs`).
//! 8. `dispatch/`: the engine: admitting events, the lanes that own resources, the schedule of
//!    timers and retries.
//! 9. `operator/`: [`Operator`]: `builder.rs` (its settings), `phases.rs` (a run: checks, startup,
//!    events, graceful stop, cleanup).
//! 10. `cli/`: [`run`] and its flags ([`cli::Args`]), and installing the log format.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The layers, bottom to top, as the crate docs' "Layout" lists them: each imports only from
// itself and those declared before it. `tests/layers.rs` keeps the same list and checks it.
// (The comments keep rustfmt from sorting the declarations.)
// 1. api
mod api;
// 2. observe
mod observe;
// 3. stores
mod shared;
pub mod store;
// 4. contract
mod contract;
// 5. plan
mod plan;
// 6. exec
mod exec;
// 7. source
pub mod source;
// 8. dispatch
mod dispatch;
// 9. operator
mod operator;
// 10. cli
pub mod cli;

#[doc = include_str!("docs/diagnostics.md")]
pub mod diagnostics {}

pub use api::diff::{Diff, DiffChange, DiffOp};
pub use api::error::{Error, Result, UnknownKind};
pub use api::event::{Event, EventType};
pub use api::labels::{Annotations, Labels};
pub use api::logger::Logger;
pub use api::memo::{Memo, MemoError};
pub use api::patch::Patch;
pub use api::post_events::PostEvents;
pub use api::problem::Problem;
pub use api::recorder::Recorder;
pub use api::selector::{Selector, SelectorError};
pub use api::shard;
pub use api::signal::Signal;
/// The clap memo parses its flags with ([`cli::Args`]): derive your own parser through it
/// (`use memo_runtime::clap::{self, Parser};`), without a second version of clap.
pub use clap;
pub use cli::{run, run_with, run_with_args};
pub use contract::registry::registered_handler_count;
#[doc = include_str!("docs/handler.md")]
pub use memo_macros::handler;
#[doc = include_str!("docs/prepare_memory.md")]
pub use memo_macros::prepare_memory;
pub use operator::{DEFAULT_SHUTDOWN_TIMEOUT, Operator, ProgressIn};
pub use shared::{DEFAULT_BOT_NAME, LockGuard, Shared};

/// The kube crate memo watches clusters with (feature `kube`): use it to build the
/// [`kube::Client`] that [`source::kubernetes`] takes, without a second version of it.
#[cfg(feature = "kube")]
pub use kube;

/// Kubernetes' API types (feature `kube`), the version kube is built with.
#[cfg(feature = "kube")]
pub use k8s_openapi;

/// Everything a handler module needs: `use memo_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::api::diff::{Diff, DiffChange, DiffOp};
    pub use crate::api::error::{Error, Result};
    pub use crate::api::event::{Event, EventType};
    pub use crate::api::labels::{Annotations, Labels};
    pub use crate::api::logger::Logger;
    pub use crate::api::memo::Memo;
    pub use crate::api::patch::Patch;
    pub use crate::api::post_events::PostEvents;
    pub use crate::api::recorder::Recorder;
    pub use crate::api::selector::Selector;
    pub use crate::api::shard::Fence;
    pub use crate::operator::{Operator, ProgressIn};
    pub use crate::shared::{LockGuard, Shared};
    pub use memo_macros::{handler, prepare_memory};
}

/// Not public API: what the attribute macros' expansions refer to.
#[doc(hidden)]
pub mod __private {
    pub use crate::contract::context::Context;
    pub use crate::contract::inject::{
        BodyArg, EventArg, FenceArg, LoggerArg, MemoArg, NameArg, NamespaceArg, RetryArg, SharedArg, UidArg,
        memo_type_of,
    };
    pub use crate::contract::inject_change::{DiffArg, NewArg, OldArg};
    pub use crate::contract::inject_cluster::{ClientArg, PatchArg, RecorderArg};
    pub use crate::contract::inject_object::{AnnotationsArg, LabelsArg, SpecArg, StatusArg};
    pub use crate::contract::outcome::{HandlerError, InjectError, IntoOutcome, Outcome};
    pub use crate::contract::registry::{
        BoxFuture, EventFilter, Filters, Invoke, MemoType, Preparer, Registration, RetryPolicy, Trigger, When,
    };
    pub use inventory;
    pub use std::time::Duration;

    /// The outcome of a wrapper whose injection failed.
    pub fn injection_failed(err: InjectError) -> Outcome {
        Err(err.into())
    }

    /// Boxes an async handler's future; requiring `Send` here makes rustc point a non-`Send`
    /// future at the handler.
    pub fn boxed_handler_future<'a>(
        future: impl std::future::Future<Output = Outcome> + Send + 'a,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(future)
    }

    /// The future of an async wrapper whose injection failed.
    pub fn injection_failed_async<'a>(err: InjectError) -> BoxFuture<'a, Outcome> {
        Box::pin(std::future::ready(Err(err.into())))
    }
}
