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
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::time::delay_queue::{self, DelayQueue};

/// What a resource keeps between events.
pub(crate) struct ResourceState<M> {
    memo: M,
    logger: OnceLock<Box<Logger>>,
    /// The latest object, kept only for kinds with timers (a timer sees the latest body).
    body: Option<Value>,
}

/// One unit of work for a resource.
enum Work {
    Event(Event),
    Timer(u16),
}

struct Slot<M> {
    plan: Arc<KindPlan>,
    /// `None` while a worker holds it.
    state: Option<ResourceState<M>>,
    pending: VecDeque<Work>,
    timer_keys: Box<[Option<delay_queue::Key>]>,
}

struct Job<M> {
    key: Arc<str>,
    plan: Arc<KindPlan>,
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
    resources: HashMap<Arc<str>, Slot<M>, ahash::RandomState>,
    timers: DelayQueue<(Arc<str>, u16)>,
    in_flight: usize,
    accepting_timers: bool,
}

impl<M: Clone + Send + Sync + 'static> Dispatcher<M> {
    pub(crate) fn new(operator_memo: M, catalog: Catalog) -> Self {
        Dispatcher {
            operator_memo,
            catalog,
            resources: HashMap::default(),
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
        let Some(key) = self.admit(&event) else {
            return;
        };
        let deleted_key = (event.r#type == EventType::Deleted).then(|| Arc::<str>::from(&*key));
        // Inline, a resource's state never leaves its slot.
        let Some(Slot {
            plan,
            state: Some(state),
            ..
        }) = self.resources.get_mut(&*key)
        else {
            return;
        };
        drop(key);
        run_work(plan, state, Work::Event(event)).await;
        if let Some(key) = deleted_key {
            self.forget(&key);
        }
    }

    async fn run_timer_inline(&mut self, key: Arc<str>, timer: u16) {
        let Some(Slot {
            plan,
            state: Some(state),
            timer_keys,
            ..
        }) = self.resources.get_mut(&key)
        else {
            return;
        };
        timer_keys[usize::from(timer)] = None;
        run_work(plan, state, Work::Timer(timer)).await;
        self.reschedule(&key, timer);
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
                Some(finished) = done.recv() => self.finish(finished, &jobs),
                Some(expired) = poll_fn(|cx| self.timers.poll_expired(cx)), if reading && !self.timers.is_empty() => {
                    let (key, timer) = expired.into_inner();
                    if let Some(slot) = self.resources.get_mut(&key) {
                        slot.timer_keys[usize::from(timer)] = None;
                        self.in_flight += 1;
                        self.enqueue(key, Work::Timer(timer), &jobs);
                    }
                }
                event = source.next(), if reading && self.in_flight < in_flight_limit => match event {
                    Some(event) => {
                        if let Some(key) = self.admit(&event) {
                            let key = self.key_arc(&key);
                            self.in_flight += 1;
                            self.enqueue(key, Work::Event(event), &jobs);
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

    fn key_arc(&self, key: &str) -> Arc<str> {
        self.resources
            .get_key_value(key)
            .map(|(key, _)| Arc::clone(key))
            .unwrap_or_else(|| key.into())
    }

    /// Queues work for a resource, or sends it to a worker right away if the resource is idle.
    fn enqueue(&mut self, key: Arc<str>, work: Work, jobs: &async_channel::Sender<Job<M>>) {
        let Some(slot) = self.resources.get_mut(&key) else {
            self.in_flight -= 1;
            return;
        };
        match slot.state.take() {
            Some(state) => {
                let job = Job {
                    plan: Arc::clone(&slot.plan),
                    key,
                    state,
                    first: work,
                    rest: VecDeque::new(),
                };
                send(jobs, job);
            }
            None => slot.pending.push_back(work),
        }
    }

    fn finish(&mut self, done: Done<M>, jobs: &async_channel::Sender<Job<M>>) {
        self.in_flight -= done.finished;
        let key = done.key;
        if done.deleted {
            let pending = self.forget(&key).map(|slot| slot.pending).unwrap_or_default();
            for work in done.leftover.into_iter().chain(pending) {
                match work {
                    Work::Event(event) => match self.admit(&event) {
                        Some(_) => self.enqueue(Arc::clone(&key), Work::Event(event), jobs),
                        None => self.in_flight -= 1,
                    },
                    Work::Timer(_) => self.in_flight -= 1,
                }
            }
            return;
        }
        for timer in done.timers_ran {
            self.reschedule(&key, timer);
        }
        let Some(slot) = self.resources.get_mut(&key) else {
            return;
        };
        let mut rest = std::mem::take(&mut slot.pending);
        match rest.pop_front() {
            Some(first) => {
                let job = Job {
                    plan: Arc::clone(&slot.plan),
                    key,
                    state: done.state,
                    first,
                    rest,
                };
                send(jobs, job);
            }
            None => slot.state = Some(done.state),
        }
    }

    /// Validates an event and finds or creates its resource. Returns the resource key, or `None`
    /// (logged) if the event is invalid or no handler wants its kind.
    fn admit<'e>(&mut self, event: &'e Event) -> Option<Cow<'e, str>> {
        let (Some(kind), Some(name)) = (event.kind(), event.name()) else {
            reject(event);
            return None;
        };
        let api_version = event.api_version().unwrap_or_default();
        let Some(plan) = self.catalog.plan(kind, api_version) else {
            tracing::trace!(target: "memo", kind, name, "no handler for this kind; event ignored");
            return None;
        };
        let key = match event.uid() {
            Some(uid) => Cow::Borrowed(uid),
            None => Cow::Owned(match event.namespace() {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name.to_owned(),
            }),
        };
        if !self.resources.contains_key(&*key) {
            let plan = Arc::clone(plan);
            let key: Arc<str> = Arc::from(&*key);
            let timer_keys = (0..=u16::MAX)
                .zip(plan.timers.iter())
                .map(|(index, spec)| Some(self.timers.insert((Arc::clone(&key), index), spec.initial_delay)))
                .collect();
            let state = ResourceState {
                memo: self.operator_memo.clone(),
                logger: OnceLock::new(),
                body: None,
            };
            self.resources.insert(
                key,
                Slot {
                    plan,
                    state: Some(state),
                    pending: VecDeque::new(),
                    timer_keys,
                },
            );
        }
        Some(key)
    }

    fn reschedule(&mut self, key: &Arc<str>, timer: u16) {
        if !self.accepting_timers {
            return;
        }
        if let Some(slot) = self.resources.get_mut(key) {
            let interval = slot.plan.timers[usize::from(timer)].interval;
            slot.timer_keys[usize::from(timer)] = Some(self.timers.insert((Arc::clone(key), timer), interval));
        }
    }

    /// Drops a resource (and its memo) and cancels its timers.
    fn forget(&mut self, key: &str) -> Option<Slot<M>> {
        let slot = self.resources.remove(key)?;
        for timer_key in slot.timer_keys.iter().flatten() {
            self.timers.try_remove(timer_key);
        }
        Some(slot)
    }

    fn stop_timers(&mut self) {
        self.accepting_timers = false;
        self.timers.clear();
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
            plan,
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
            if run_work(&plan, &mut state, work).await {
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
async fn run_work<M: Send + Sync + 'static>(plan: &KindPlan, state: &mut ResourceState<M>, work: Work) -> bool {
    match work {
        Work::Event(event) => {
            let env = Env {
                body: Some(&event.object),
                event: Some(&event),
                logger: &state.logger,
            };
            for handler in plan.handlers(event.r#type) {
                invoke::call(handler, &mut state.memo, &env).await;
            }
            let deleted = event.r#type == EventType::Deleted;
            if plan.has_timers() && !deleted {
                state.body = Some(event.object);
            }
            deleted
        }
        Work::Timer(timer) => {
            let spec = &plan.timers[usize::from(timer)];
            let env = Env {
                body: state.body.as_ref(),
                event: None,
                logger: &state.logger,
            };
            invoke::call(&spec.handler, &mut state.memo, &env).await;
            false
        }
    }
}
