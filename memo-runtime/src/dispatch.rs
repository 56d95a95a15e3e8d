//! The event loop: routes events to resources, keeps each resource's memo, runs handlers one
//! resource at a time and up to `workers` resources at once, and fires timers.
//!
//! Resources are plain data in one map owned by this loop, not tasks: an idle resource costs its
//! map entry and its memo. With one worker, handlers run inline in the loop (no hand-off at all);
//! with more, a resource's state travels to a worker task with its queued work and comes back.

use crate::catalog::{Catalog, KindPlan};
use crate::inject::Env;
use crate::source::EventSource;
use crate::{invoke, Event, EventType, Logger};
use hashbrown::hash_map::EntryRef;
use once_cell::race::OnceBox;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::time::delay_queue::{self, DelayQueue};

/// What a resource keeps between events.
pub(crate) struct ResourceState<M> {
    /// The handlers of the resource's kind. Part of the state, so that it travels to a worker
    /// and back by move, without touching a reference count shared by every resource of the kind.
    plan: Arc<KindPlan>,
    memo: M,
    /// Made when a handler first asks for it; one pointer until then.
    logger: OnceBox<Logger>,
    /// The latest object, kept only for kinds with timers (a timer sees the latest body).
    body: Option<Box<Value>>,
}

/// One unit of work for a resource.
enum Work {
    Event(Event),
    Timer(u16),
}

/// A resource as the loop keeps it. Kept small: the map holds one per resource, so every byte
/// here is paid 100,000 times at 100,000 resources.
struct Slot<M> {
    /// `None` while a worker holds it.
    state: Option<ResourceState<M>>,
    /// What only some resources need, allocated when first needed.
    cold: Option<Box<Cold>>,
}

/// The rarely needed part of a [`Slot`].
#[derive(Default)]
struct Cold {
    /// Work that arrived while a worker held the state.
    pending: VecDeque<Work>,
    /// The scheduled run of each of the kind's timers (`None` while it runs or waits to).
    timer_keys: Box<[Option<delay_queue::Key>]>,
}

impl<M> Slot<M> {
    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    /// Frees the cold part once it holds nothing: a kind without timers that was busy for a while
    /// goes back to its small idle size.
    fn release_idle_cold(&mut self) {
        if self
            .cold
            .as_ref()
            .is_some_and(|cold| cold.pending.is_empty() && cold.timer_keys.is_empty())
        {
            self.cold = None;
        }
    }

    fn take_pending(&mut self) -> VecDeque<Work> {
        self.cold
            .as_mut()
            .map(|cold| std::mem::take(&mut cold.pending))
            .unwrap_or_default()
    }
}

type Resources<M> = hashbrown::HashMap<Arc<str>, Slot<M>, ahash::RandomState>;

struct Job<M> {
    key: Arc<str>,
    state: ResourceState<M>,
    first: Work,
    rest: VecDeque<Work>,
}

struct Done<M> {
    key: Arc<str>,
    state: ResourceState<M>,
    deleted: bool,
    /// Work after a `DELETED` event, not run: it belongs to a new incarnation of the resource.
    leftover: VecDeque<Work>,
    finished: usize,
    timers_ran: Vec<u16>,
}

pub(crate) struct Dispatcher<M> {
    operator_memo: M,
    catalog: Catalog,
    resources: Resources<M>,
    timers: DelayQueue<(Arc<str>, u16)>,
    in_flight: usize,
    accepting_timers: bool,
}

impl<M: Clone + Send + Sync + 'static> Dispatcher<M> {
    pub(crate) fn new(operator_memo: M, catalog: Catalog) -> Self {
        Dispatcher {
            operator_memo,
            catalog,
            resources: Resources::default(),
            timers: DelayQueue::new(),
            in_flight: 0,
            accepting_timers: true,
        }
    }

    /// Runs until the source ends or `shutdown` completes, then drains what is in flight, drops
    /// every resource memo, and gives back the operator memo.
    pub(crate) async fn run(mut self, source: EventSource, shutdown: impl Future<Output = ()>, workers: usize) -> M {
        if workers <= 1 {
            self.run_inline(source, shutdown).await;
        } else {
            self.run_workers(source, shutdown, workers).await;
        }
        self.timers.clear();
        self.resources.clear();
        self.operator_memo
    }

    async fn run_inline(&mut self, mut source: EventSource, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(expired) = poll_fn(|cx| self.timers.poll_expired(cx)), if !self.timers.is_empty() => {
                    let (key, timer) = expired.into_inner();
                    self.run_timer_inline(key, timer).await;
                }
                event = source.next() => match event {
                    Some(event) => self.run_event_inline(event).await,
                    None => break,
                },
            }
        }
    }

    async fn run_event_inline(&mut self, event: Event) {
        let deleted = event.r#type == EventType::Deleted;
        let Some((key, slot)) = self.admit(&event) else {
            return;
        };
        // Inline, a resource's state never leaves its slot.
        let Some(state) = slot.state.as_mut() else {
            return;
        };
        run_work(state, Work::Event(event)).await;
        if deleted {
            self.forget(&key);
        }
    }

    async fn run_timer_inline(&mut self, key: Arc<str>, timer: u16) {
        let Some(slot) = self.resources.get_mut(&key) else {
            return;
        };
        if let Some(cold) = slot.cold.as_mut() {
            cold.timer_keys[usize::from(timer)] = None;
        }
        let Some(state) = slot.state.as_mut() else {
            return;
        };
        run_work(state, Work::Timer(timer)).await;
        let interval = state.plan.timers[usize::from(timer)].interval;
        self.reschedule(&key, timer, interval);
    }

    async fn run_workers(&mut self, mut source: EventSource, shutdown: impl Future<Output = ()>, workers: usize) {
        let (jobs, job_queue) = async_channel::unbounded::<Job<M>>();
        let (done_sender, mut done) = mpsc::unbounded_channel::<Done<M>>();
        let mut pool = tokio::task::JoinSet::new();
        for _ in 0..workers {
            pool.spawn(worker(job_queue.clone(), done_sender.clone()));
        }
        drop((job_queue, done_sender));
        let in_flight_limit = 1024.max(workers * 256);
        let mut reading = true;
        tokio::pin!(shutdown);
        while reading || self.in_flight > 0 {
            tokio::select! {
                biased;
                () = &mut shutdown, if reading => {
                    reading = false;
                    self.stop_timers();
                }
                Some(finished) = done.recv() => {
                    self.finish(finished, &jobs);
                    while let Ok(finished) = done.try_recv() {
                        self.finish(finished, &jobs);
                    }
                }
                Some(expired) = poll_fn(|cx| self.timers.poll_expired(cx)), if reading && !self.timers.is_empty() => {
                    let (key, timer) = expired.into_inner();
                    if let Some(slot) = self.resources.get_mut(&key) {
                        if let Some(cold) = slot.cold.as_mut() {
                            cold.timer_keys[usize::from(timer)] = None;
                        }
                        enqueue(key, slot, Work::Timer(timer), &jobs);
                        self.in_flight += 1;
                    }
                }
                event = source.next(), if reading && self.in_flight < in_flight_limit => match event {
                    Some(event) => {
                        self.route(event, &jobs);
                        // Take what else is ready without going back to `select!`: one wake-up
                        // then serves a batch.
                        while self.in_flight < in_flight_limit {
                            let Some(event) = source.try_next() else { break };
                            self.route(event, &jobs);
                        }
                    }
                    None => {
                        reading = false;
                        self.stop_timers();
                    }
                },
            }
        }
        jobs.close();
        while let Some(result) = pool.join_next().await {
            if let Err(err) = result {
                tracing::error!(target: "memo", "a worker task failed: {err}");
            }
        }
    }

    fn route(&mut self, event: Event, jobs: &async_channel::Sender<Job<M>>) {
        if let Some((key, slot)) = self.admit(&event) {
            enqueue(key, slot, Work::Event(event), jobs);
            self.in_flight += 1;
        }
    }

    fn finish(&mut self, done: Done<M>, jobs: &async_channel::Sender<Job<M>>) {
        self.in_flight -= done.finished;
        let key = done.key;
        if done.deleted {
            let pending = self
                .forget(&key)
                .map(|mut slot| slot.take_pending())
                .unwrap_or_default();
            for work in done.leftover.into_iter().chain(pending) {
                self.in_flight -= 1;
                if let Work::Event(event) = work {
                    // A new incarnation: admitted afresh, with a fresh memo.
                    self.route(event, jobs);
                }
            }
            return;
        }
        for &timer in &done.timers_ran {
            let interval = done.state.plan.timers[usize::from(timer)].interval;
            self.reschedule(&key, timer, interval);
        }
        let Some(slot) = self.resources.get_mut(&key) else {
            return;
        };
        let mut rest = slot.take_pending();
        match rest.pop_front() {
            Some(first) => {
                let job = Job {
                    key,
                    state: done.state,
                    first,
                    rest,
                };
                send(jobs, job);
            }
            None => {
                slot.state = Some(done.state);
                slot.release_idle_cold();
            }
        }
    }

    /// Validates an event and finds or creates its resource, in one lookup. Returns the resource
    /// key and slot, or `None` (logged) if the event is invalid or no handler wants its kind.
    fn admit(&mut self, event: &Event) -> Option<(Arc<str>, &mut Slot<M>)> {
        let object = &event.object;
        let metadata = object.get("metadata");
        let field = |name: &str| metadata.and_then(|metadata| metadata.get(name)).and_then(Value::as_str);
        let (Some(kind), Some(name)) = (object.get("kind").and_then(Value::as_str), field("name")) else {
            reject(event);
            return None;
        };
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let Some(plan) = self.catalog.plan(kind, api_version) else {
            tracing::trace!(target: "memo", kind, name, "no handler for this kind; event ignored");
            return None;
        };
        let key = match field("uid") {
            Some(uid) => Cow::Borrowed(uid),
            None => Cow::Owned(match field("namespace") {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name.to_owned(),
            }),
        };
        match self.resources.entry_ref(&*key) {
            EntryRef::Occupied(entry) => Some((Arc::clone(entry.key()), entry.into_mut())),
            EntryRef::Vacant(entry) => {
                let key: Arc<str> = Arc::from(&*key);
                let cold = plan.has_timers().then(|| {
                    let timer_keys = (0..=u16::MAX)
                        .zip(plan.timers.iter())
                        .map(|(index, spec)| Some(self.timers.insert((Arc::clone(&key), index), spec.initial_delay)))
                        .collect();
                    Box::new(Cold {
                        pending: VecDeque::new(),
                        timer_keys,
                    })
                });
                let slot = Slot {
                    state: Some(ResourceState {
                        plan: Arc::clone(plan),
                        memo: self.operator_memo.clone(),
                        logger: OnceBox::new(),
                        body: None,
                    }),
                    cold,
                };
                Some((Arc::clone(&key), entry.insert_with_key(key, slot)))
            }
        }
    }

    fn reschedule(&mut self, key: &Arc<str>, timer: u16, interval: std::time::Duration) {
        if !self.accepting_timers {
            return;
        }
        if let Some(slot) = self.resources.get_mut(key) {
            let scheduled = self.timers.insert((Arc::clone(key), timer), interval);
            slot.cold().timer_keys[usize::from(timer)] = Some(scheduled);
        }
    }

    /// Drops a resource (and its memo) and cancels its timers.
    fn forget(&mut self, key: &str) -> Option<Slot<M>> {
        let slot = self.resources.remove(key)?;
        for timer_key in slot.cold.iter().flat_map(|cold| cold.timer_keys.iter().flatten()) {
            self.timers.try_remove(timer_key);
        }
        Some(slot)
    }

    fn stop_timers(&mut self) {
        self.accepting_timers = false;
        self.timers.clear();
    }
}

/// Queues work for a resource, or sends it to a worker right away if the resource is idle.
fn enqueue<M>(key: Arc<str>, slot: &mut Slot<M>, work: Work, jobs: &async_channel::Sender<Job<M>>) {
    match slot.state.take() {
        Some(state) => {
            let job = Job {
                key,
                state,
                first: work,
                rest: VecDeque::new(),
            };
            send(jobs, job);
        }
        None => slot.cold().pending.push_back(work),
    }
}

fn send<M>(jobs: &async_channel::Sender<Job<M>>, job: Job<M>) {
    if jobs.try_send(job).is_err() {
        // Unbounded and never closed while the loop runs; reaching this is a bug worth a log.
        tracing::error!(target: "memo", "internal error: the worker queue is closed; work was lost");
    }
}

fn reject(event: &Event) {
    let missing = match (event.kind(), event.name()) {
        (None, None) => "`kind` and `metadata.name`",
        (None, Some(_)) => "`kind`",
        _ => "`metadata.name`",
    };
    tracing::error!(
        target: "memo",
        r#type = event.r#type.as_str(),
        kind = event.kind().unwrap_or_default(),
        name = event.name().unwrap_or_default(),
        "event rejected: the object has no {missing}"
    );
}

async fn worker<M: Send + Sync + 'static>(jobs: async_channel::Receiver<Job<M>>, done: mpsc::UnboundedSender<Done<M>>) {
    while let Ok(job) = jobs.recv().await {
        let Job {
            key,
            mut state,
            first,
            mut rest,
        } = job;
        let queued = 1 + rest.len();
        let mut timers_ran = Vec::new();
        let mut deleted = false;
        let mut next = Some(first);
        while let Some(work) = next.take().or_else(|| rest.pop_front()) {
            if let Work::Timer(timer) = work {
                timers_ran.push(timer);
            }
            if run_work(&mut state, work).await {
                deleted = true;
                break;
            }
        }
        let finished = queued - rest.len();
        let report = Done {
            key,
            state,
            deleted,
            leftover: rest,
            finished,
            timers_ran,
        };
        if done.send(report).is_err() {
            return;
        }
    }
}

/// Runs one unit of work for a resource. Returns whether the resource was deleted.
async fn run_work<M: Send + Sync + 'static>(state: &mut ResourceState<M>, work: Work) -> bool {
    let ResourceState {
        plan,
        memo,
        logger,
        body,
    } = state;
    match work {
        Work::Event(event) => {
            let env = Env {
                body: Some(&event.object),
                event: Some(&event),
                logger,
            };
            for handler in plan.handlers(event.r#type) {
                invoke::call(handler, memo, &env).await;
            }
            let deleted = event.r#type == EventType::Deleted;
            if plan.has_timers() && !deleted {
                *body = Some(Box::new(event.object));
            }
            deleted
        }
        Work::Timer(timer) => {
            let spec = &plan.timers[usize::from(timer)];
            let env = Env {
                body: body.as_deref(),
                event: None,
                logger,
            };
            invoke::call(&spec.handler, memo, &env).await;
            false
        }
    }
}
