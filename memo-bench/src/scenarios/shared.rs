//! Measurement 5, shared memory in-process: `update` of a `u64` counter, `get`, `set`, and a
//! `lock` + `get` + `set` cycle, from 1 and 2 threads, against a `Mutex<HashMap<String, u64>>`
//! doing the same.
//!
//! Each thread is a std thread: the subject drives `Shared` from a current-thread tokio runtime of
//! its own, so two threads really run at once on the two cores, and the baseline calls its mutex
//! directly. All threads work on the same key, the shared counter of the issue; one more row has
//! each thread update a key of its own, to tell contention on the key from contention on the
//! store, and a bare `AtomicU64` shows what the hardware allows for one shared counter.

use crate::Config;
use crate::report::{Goal, Report};
use crate::stats::{Samples, grouped, paired_ratios, per_second};
use memo_runtime::Shared;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::runtime::Runtime;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Update,
    Get,
    Set,
    LockCycle,
    /// `update`, each thread on its own key.
    UpdateOwnKey,
}

const OPS: [Op; 5] = [Op::Update, Op::Get, Op::Set, Op::LockCycle, Op::UpdateOwnKey];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Update => "update",
            Op::Get => "get",
            Op::Set => "set",
            Op::LockCycle => "lock+get+set",
            Op::UpdateOwnKey => "update (own key)",
        }
    }

    /// Whether every operation adds one to the counter, so the totals can be checked.
    fn increments(self) -> bool {
        matches!(self, Op::Update | Op::LockCycle | Op::UpdateOwnKey)
    }

    /// The key thread `thread` works on.
    fn key(self, thread: usize) -> String {
        match self {
            Op::UpdateOwnKey => format!("counter-{thread}"),
            _ => "counter".to_owned(),
        }
    }
}

/// Throughput samples of one operation, indexed by thread count - 1.
#[derive(Default, Clone)]
struct Figures {
    shared: [Samples; 2],
    by_hand: [Samples; 2],
}

pub fn run(_runtime: &Runtime, config: &Config, report: &mut Report) {
    let mut figures = vec![Figures::default(); OPS.len()];
    let mut atomic = [Samples::default(), Samples::default()];
    for _ in 0..config.rounds {
        for threads in [1, 2] {
            atomic[threads - 1].push(atomic_alone(threads, config.shared_ops * ATOMIC_OPS_FACTOR));
        }
        for (op, figures) in OPS.iter().zip(&mut figures) {
            let ops = if *op == Op::LockCycle {
                config.shared_lock_ops
            } else {
                config.shared_ops
            };
            for threads in [1, 2] {
                figures.by_hand[threads - 1].push(hand_written(*op, threads, ops));
                figures.shared[threads - 1].push(with_shared(*op, threads, ops));
            }
        }
    }

    report.section("5. Shared memory in-process (one u64 counter; threads share its key unless noted)");
    let mut json = Map::new();
    for (op, figures) in OPS.iter().zip(&figures) {
        add_rows(report, *op, figures);
        json.insert(op.name().to_owned(), figures_json(figures));
    }
    report.row(
        "AtomicU64::fetch_add, 1 thread",
        ops(&atomic[0]),
        "no map, no lock: the hardware",
    );
    report.row(
        "AtomicU64::fetch_add, 2 threads",
        ops(&atomic[1]),
        format!(
            "{:.2}x 1 thread: one cache line shared by 2 cores",
            paired_ratios(&atomic[1], &atomic[0]).median()
        ),
    );
    json.insert(
        "atomic_fetch_add".to_owned(),
        serde_json::json!({
            "1_thread_ops_per_second": atomic[0].to_json(),
            "2_thread_ops_per_second": atomic[1].to_json(),
        }),
    );
    report.row("botogram 0.5 get, 1 worker (reference)", "31,000 ops/s", "");
    report.row("botogram 0.5 set, 1 worker (reference)", "24,000 ops/s", "");
    report.row("botogram 0.5 locked increment (reference)", "6 ops/s", "");
    report.figures("shared", Value::Object(json));

    let update = &figures[0];
    report.target(
        "shared: update / Mutex<HashMap> baseline, 1 thread",
        paired_ratios(&update.shared[0], &update.by_hand[0]).median(),
        Goal::AtLeast,
        0.5,
    );
    // "No collapse" is about the store: two workers on their own keys must not slow each other
    // down. Two threads hammering one key cannot scale on any hardware (even a bare atomic
    // does not, see the `AtomicU64` rows), so that figure is reported above, not targeted.
    let own_key = OPS
        .iter()
        .position(|op| *op == Op::UpdateOwnKey)
        .map(|index| &figures[index])
        .expect("the own-key update is measured");
    report.target(
        "shared: update 2-thread / 1-thread throughput, each thread on its own key",
        paired_ratios(&own_key.shared[1], &own_key.shared[0]).median(),
        Goal::AtLeast,
        1.0,
    );
}

fn add_rows(report: &mut Report, op: Op, figures: &Figures) {
    for threads in [1, 2] {
        let index = threads - 1;
        let label = |who: &str| {
            format!(
                "{who} {}, {threads} thread{}",
                op.name(),
                if threads == 1 { "" } else { "s" }
            )
        };
        let scaling = |samples: &[Samples; 2]| match threads {
            2 => format!(", {:.2}x 1 thread", paired_ratios(&samples[1], &samples[0]).median()),
            _ => String::new(),
        };
        report.row(
            label("Mutex<HashMap>"),
            ops(&figures.by_hand[index]),
            format!("baseline{}", scaling(&figures.by_hand)),
        );
        let note = format!(
            "{:.2}x baseline{}",
            paired_ratios(&figures.shared[index], &figures.by_hand[index]).median(),
            scaling(&figures.shared)
        );
        report.row(label("Shared"), ops(&figures.shared[index]), note);
    }
}

fn ops(samples: &Samples) -> String {
    format!("{} ops/s", grouped(samples.median()))
}

fn figures_json(figures: &Figures) -> Value {
    let mut json = Map::new();
    for threads in [1, 2] {
        let index = threads - 1;
        json.insert(
            format!("shared_{threads}_thread_ops_per_second"),
            figures.shared[index].to_json(),
        );
        json.insert(
            format!("baseline_{threads}_thread_ops_per_second"),
            figures.by_hand[index].to_json(),
        );
    }
    Value::Object(json)
}

/// Runs `work` on `threads` threads at once and returns the total operations per second. Each
/// thread sets itself up (`setup`) before the clock starts; both get the thread's index.
///
/// The threads start together by spinning until all are ready (waking threads parked in a
/// `Barrier` took milliseconds here, so short runs barely overlapped), and read the clock
/// themselves, from the first start to the last end (a clock read by a third thread started late
/// whenever that thread waited for a core, which inflated 2-thread figures).
fn on_threads<S>(
    threads: usize,
    ops_per_thread: usize,
    setup: impl Fn(usize) -> S + Sync,
    work: impl Fn(&S, usize) + Sync,
) -> f64 {
    let ready = AtomicUsize::new(0);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (setup, work, ready) = (&setup, &work, &ready);
                scope.spawn(move || {
                    let state = setup(thread);
                    ready.fetch_add(1, Ordering::SeqCst);
                    while ready.load(Ordering::SeqCst) < threads {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    work(&state, thread);
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a measuring thread panicked"))
            .collect()
    });
    let start = spans.iter().map(|span| span.0).min().expect("at least one thread");
    let end = spans.iter().map(|span| span.1).max().expect("at least one thread");
    per_second(threads * ops_per_thread, end - start)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("cannot start a tokio runtime")
}

/// The bare atomic is some 20 times faster than the stores, so it gets ten times their operations:
/// its runs then last tens of milliseconds, long enough for the threads to overlap.
const ATOMIC_OPS_FACTOR: usize = 10;

/// The floor under any shared counter: a bare atomic increment, on one cache line.
fn atomic_alone(threads: usize, ops: usize) -> f64 {
    let counter = AtomicU64::new(0);
    let throughput = on_threads(
        threads,
        ops,
        |_| (),
        |(), _| {
            for _ in 0..ops {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    assert_eq!(counter.into_inner(), (threads * ops) as u64);
    throughput
}

/// `Shared` driven from `threads` threads, `ops` operations each.
fn with_shared(op: Op, threads: usize, ops: usize) -> f64 {
    let shared = Shared::new();
    let outside = current_thread_runtime();
    for thread in 0..threads {
        outside.block_on(shared.set(&op.key(thread), 0u64)).expect("set");
    }
    let throughput = on_threads(
        threads,
        ops,
        |thread| (current_thread_runtime(), op.key(thread)),
        |(runtime, key), _| runtime.block_on(shared_loop(&shared, op, key, ops)),
    );
    check(op, threads, ops, |key| {
        outside.block_on(shared.get(key)).expect("a u64").expect("the counter")
    });
    throughput
}

async fn shared_loop(shared: &Shared, op: Op, key: &str, ops: usize) {
    match op {
        Op::Update | Op::UpdateOwnKey => {
            for _ in 0..ops {
                shared.update(key, |n: &mut u64| *n += 1).await.expect("update");
            }
        }
        Op::Get => {
            for _ in 0..ops {
                std::hint::black_box(shared.get::<u64>(key).await.expect("get"));
            }
        }
        Op::Set => {
            for index in 0..ops {
                shared.set(key, index as u64).await.expect("set");
            }
        }
        Op::LockCycle => {
            for _ in 0..ops {
                let guard = shared.lock("counter-lock").await.expect("lock");
                let n: u64 = shared.get(key).await.expect("get").unwrap_or(0);
                shared.set(key, n + 1).await.expect("set");
                guard.release();
            }
        }
    }
}

/// The baseline store: a map behind a mutex, and a separate mutex for the locked cycle. It
/// allocates a key only the first time it sees it, as hand-written code would.
#[derive(Default)]
struct ByHand {
    values: Mutex<HashMap<String, u64>>,
    lock: Mutex<()>,
}

impl ByHand {
    fn values(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.values.lock().expect("not poisoned")
    }

    fn set(&self, key: &str, value: u64) {
        let mut values = self.values();
        match values.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                values.insert(key.to_owned(), value);
            }
        }
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.values().get(key).copied()
    }

    fn update(&self, key: &str) {
        let mut values = self.values();
        match values.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                values.insert(key.to_owned(), 1);
            }
        }
    }
}

fn hand_written(op: Op, threads: usize, ops: usize) -> f64 {
    let store = ByHand::default();
    for thread in 0..threads {
        store.set(&op.key(thread), 0);
    }
    let throughput = on_threads(
        threads,
        ops,
        |thread| op.key(thread),
        |key, _| by_hand_loop(&store, op, key, ops),
    );
    check(op, threads, ops, |key| store.get(key).expect("the counter"));
    throughput
}

fn by_hand_loop(store: &ByHand, op: Op, key: &str, ops: usize) {
    match op {
        Op::Update | Op::UpdateOwnKey => (0..ops).for_each(|_| store.update(key)),
        Op::Get => (0..ops).for_each(|_| {
            std::hint::black_box(store.get(key));
        }),
        Op::Set => (0..ops).for_each(|index| store.set(key, index as u64)),
        Op::LockCycle => (0..ops).for_each(|_| {
            let _guard = store.lock.lock().expect("not poisoned");
            let n = store.get(key).unwrap_or(0);
            store.set(key, n + 1);
        }),
    }
}

/// Increments must all have landed: a lost update would make the figures meaningless.
fn check(op: Op, threads: usize, ops: usize, read: impl Fn(&str) -> u64) {
    if !op.increments() {
        return;
    }
    if op == Op::UpdateOwnKey {
        for thread in 0..threads {
            assert_eq!(read(&op.key(thread)), ops as u64, "{} lost updates", op.name());
        }
    } else {
        assert_eq!(read(&op.key(0)), (threads * ops) as u64, "{} lost updates", op.name());
    }
}
