//! The operator: validates the registered handlers, runs startup handlers, handles events, and
//! shuts down gracefully.

use crate::catalog::Catalog;
use crate::dispatch::Dispatcher;
use crate::inject::Env;
use crate::invoke::Bound;
use crate::registry::{self, MemoType, Registration, Trigger};
use crate::shared::SharedMemory;
use crate::source::EventSource;
use crate::store::{InProcessStore, Store, StoreRef};
use crate::{invoke, Error, Logger, Memo, Result, Shared};

/// Runs the registered handlers over a source of events, owning the memo hierarchy.
///
/// `M` is the memo type: [`Memo`] unless [`Operator::memo`] gives another. Each resource's memo
/// is a `Clone` of the operator memo taken when the resource is first seen.
///
/// ```
/// use memo_runtime::prelude::*;
///
/// #[handler(event = "KopfExample")]
/// fn pinged(memo: &mut Memo) {
///     let n = memo.get::<u64>("counter").copied().unwrap_or(0);
///     memo.insert("counter", n + 1);
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let (events, source) = memo_runtime::source::channel(1024);
///     let operator = Operator::new().workers(2).source(source);
///     let running = tokio::spawn(operator.run());
///     events.send(Event::added(serde_json::json!({
///         "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
///         "metadata": {"name": "ex1", "namespace": "default", "uid": "u-1"}
///     }))).await?;
///     drop(events);            // the source ends
///     running.await??;         // drains, stops timers, runs cleanup
///     Ok(())
/// }
/// ```
#[must_use = "an operator does nothing until `run` is awaited"]
pub struct Operator<M = Memo> {
    memo: M,
    memory: SharedMemory,
    workers: usize,
    source: Option<EventSource>,
    handle_signals: bool,
}

impl Operator<Memo> {
    /// An operator with an empty [`Memo`], as many workers as the machine has cores, and no
    /// source yet.
    pub fn new() -> Self {
        Operator {
            memo: Memo::new(),
            memory: SharedMemory::new(
                registry::registered_preparers(),
                StoreRef::InProcess(InProcessStore::new()),
                crate::DEFAULT_BOT_NAME.into(),
            ),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            source: None,
            handle_signals: true,
        }
    }
}

impl Default for Operator<Memo> {
    fn default() -> Self {
        Operator::new()
    }
}

impl<M> std::fmt::Debug for Operator<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("memo_type", &std::any::type_name::<M>())
            .field("name", self.memory.bot())
            .field("store", self.memory.store())
            .field("workers", &self.workers)
            .field("source", &self.source)
            .field("handle_signals", &self.handle_signals)
            .finish()
    }
}

impl<M: Clone + Send + Sync + 'static> Operator<M> {
    /// Sets the operator memo: what startup handlers fill and every resource memo is cloned from.
    ///
    /// Any `Clone + Send + Sync + 'static` type can be the memo; its `Clone` is the shallow copy
    /// a resource gets. Handlers then ask for `&N` or `&mut N`.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    /// use std::sync::{Arc, Mutex};
    ///
    /// // One global memo: every clone shares the same state.
    /// #[derive(Clone, Default)]
    /// struct Context(Arc<Mutex<Vec<String>>>);
    ///
    /// let operator: Operator<Context> = Operator::new().memo(Context::default());
    /// # drop(operator);
    /// ```
    pub fn memo<N: Clone + Send + Sync + 'static>(self, memo: N) -> Operator<N> {
        Operator {
            memo,
            memory: self.memory,
            workers: self.workers,
            source: self.source,
            handle_signals: self.handle_signals,
        }
    }

    /// The bot's name (default [`DEFAULT_BOT_NAME`](crate::DEFAULT_BOT_NAME)): its identity in the
    /// [store](Operator::store). Its shared memories, their keys, locks and preparation live under
    /// it, so two bots with different names never see each other's state in one store, and the
    /// replicas of one bot (same name, same store) share theirs.
    ///
    /// Set it before taking [`Operator::shared`] handles: they belong to the name they were taken
    /// under.
    ///
    /// ```
    /// use memo_runtime::prelude::*;
    ///
    /// let operator = Operator::new().name("message-counter");
    /// assert_eq!(operator.shared().bot(), "message-counter");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        let name: String = name.into();
        self.memory = self.memory.with(self.memory.store().clone(), name.into());
        self
    }

    /// Where shared memory lives (default: an [`InProcessStore`] of this operator's own). Give a
    /// [`RedisStore`](crate::store) (feature `redis`) to share it between processes and machines,
    /// or any other [`Store`].
    ///
    /// Set it before taking [`Operator::shared`] handles: they belong to the store they were taken
    /// from.
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # async fn start() -> memo_runtime::Result<()> {
    /// use memo_runtime::prelude::*;
    /// use memo_runtime::store::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// let operator = Operator::new().name("message-counter").store(store);
    /// # drop(operator);
    /// # Ok(())
    /// # }
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.memory = self.memory.with(StoreRef::of(store), self.memory.bot().clone());
        self
    }

    /// The bot-level shared memory that handlers without a `component` get.
    ///
    /// The handle reads and writes the same memory as the handlers, from embedding code or
    /// tests. It does not run the preparers: they run when the first handler needs the memory.
    pub fn shared(&self) -> Shared {
        self.memory.space(None)
    }

    /// The shared memory of one component (handlers with `component = "NAME"`). Same caveat as
    /// [`Operator::shared`].
    pub fn component_shared(&self, component: &str) -> Shared {
        self.memory.space(Some(component))
    }

    /// How many handler invocations may run at once (at least 1). Events of one resource always
    /// run one at a time and in order; different resources run concurrently.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Where events come from: [`source::channel`](crate::source::channel) or
    /// [`source::json_stream`](crate::source::json_stream). The operator stops when it ends.
    pub fn source(mut self, source: EventSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Whether SIGINT and SIGTERM stop the operator gracefully (default: yes).
    pub fn handle_signals(mut self, handle_signals: bool) -> Self {
        self.handle_signals = handle_signals;
        self
    }

    /// Runs the operator to completion.
    ///
    /// First checks the registered handlers (memo types, duplicate ids) and fails with
    /// [`Error::Startup`] before handling anything if they are wrong. Then runs the startup
    /// handlers on the operator memo, handles events until the source ends or a signal arrives,
    /// drains what is in flight, stops timers, drops the resource memos, and runs the cleanup
    /// handlers.
    pub async fn run(self) -> Result<()> {
        let handlers = registry::registered();
        let problems = registry::validate(&handlers, &registry::registered_preparers(), MemoType::of::<M>());
        if !problems.is_empty() {
            for problem in &problems {
                tracing::error!(target: "memo", code = problem.code(), "{}", problem.message());
            }
            return Err(Error::Startup(problems));
        }
        let Operator {
            mut memo,
            memory,
            workers,
            source,
            handle_signals,
        } = self;
        // Without a source the operator runs until a signal: its placeholder channel stays open.
        let mut idle_sender = None;
        let source = match source {
            Some(source) => source,
            None if handle_signals => {
                let (sender, source) = crate::source::channel(1);
                idle_sender = Some(sender);
                source
            }
            None => {
                return Err(Error::custom(
                    "the operator has no source: call `Operator::source` before `run`",
                ))
            }
        };

        run_lifecycle(&handlers, &memory, Trigger::is_startup, &mut memo).await;
        let dispatcher = Dispatcher::new(memo, Catalog::new(&handlers, memory.clone()));
        let mut memo = dispatcher.run(source, shutdown_signal(handle_signals), workers).await;
        drop(idle_sender);
        run_lifecycle(&handlers, &memory, Trigger::is_cleanup, &mut memo).await;
        Ok(())
    }
}

async fn run_lifecycle<M: Send + Sync + 'static>(
    handlers: &[&'static Registration],
    memory: &SharedMemory,
    wanted: fn(&Trigger) -> bool,
    memo: &mut M,
) {
    let logger = once_cell::race::OnceBox::with_value(Box::new(Logger::operator()));
    let env = Env {
        body: None,
        event: None,
        logger: &logger,
    };
    for &handler in handlers.iter().filter(|h| wanted(&h.trigger)) {
        invoke::call(&Bound::new(handler, memory), memo, &env).await;
    }
}

async fn shutdown_signal(enabled: bool) {
    if !enabled {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => tracing::info!(target: "memo", "SIGINT received; stopping gracefully"),
                    _ = terminate.recv() => tracing::info!(target: "memo", "SIGTERM received; stopping gracefully"),
                }
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(target: "memo", "cannot listen for signals ({err}); stop the operator by ending its source");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(target: "memo", "Ctrl-C received; stopping gracefully");
        } else {
            std::future::pending::<()>().await;
        }
    }
}
