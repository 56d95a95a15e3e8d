//! The handlers the benchmarks drive.
//!
//! Handlers register globally and every handler whose selector matches an event's kind runs, so
//! each scenario has its own kind: the kinds below must match the literals in the attributes.
//!
//! The handlers check their own work cheaply (a shared atomic is touched once per resource, not
//! once per event, so two workers do not fight over its cache line), and the benchmarks check
//! the totals after each run: a benchmark that silently handled nothing would look very fast.

use memo_runtime::prelude::*;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Scenario 1, dispatch throughput.
pub const PING: &str = "Ping";
/// Scenario 2, parallel scaling.
pub const BURN: &str = "Burn";
/// Scenario 3, memo creation through the operator.
pub const FRESH: &str = "Fresh";
/// Scenario 4, memory per resource.
pub const KEEP: &str = "Keep";
/// Scenario 4, a kind with an `update` handler: each resource keeps the last object handled.
pub const TRACK: &str = "Track";
/// Scenario 6, a handler asking for nothing.
pub const PLAIN: &str = "Plain";
/// Scenario 6, a handler asking for `memo`, `name`, `namespace` and `logger`.
pub const INJECTED: &str = "Injected";

/// How many events each resource gets in the current run.
static EVENTS_PER_RESOURCE: AtomicU64 = AtomicU64::new(0);
/// Resources whose counter reached [`EVENTS_PER_RESOURCE`] in the current run.
static RESOURCES_DONE: AtomicUsize = AtomicUsize::new(0);
/// Events seen by the handlers that count every event (single-worker scenarios only). Counted
/// with `Release` so that whoever sees the final count also sees the handlers' allocations.
static EVENTS_SEEN: AtomicUsize = AtomicUsize::new(0);
/// Iterations of [`burn`] that take about 5 µs, set by [`calibrate_burn`].
static BURN_ITERATIONS: AtomicU64 = AtomicU64::new(0);

/// Resets the checks before a run in which each resource gets `events_per_resource` events.
pub fn expect(events_per_resource: u64) {
    EVENTS_PER_RESOURCE.store(events_per_resource, Ordering::SeqCst);
    RESOURCES_DONE.store(0, Ordering::SeqCst);
    EVENTS_SEEN.store(0, Ordering::SeqCst);
}

/// Resources that got all their events since [`expect`].
pub fn resources_done() -> usize {
    RESOURCES_DONE.load(Ordering::SeqCst)
}

/// Events counted since [`expect`] by the handlers that count every event.
pub fn events_seen() -> usize {
    EVENTS_SEEN.load(Ordering::Acquire)
}

/// Adds one to the memo's counter, in place once the memo owns it; reports the resource done
/// when the counter reaches the expected number of events.
fn count(memo: &mut Memo) {
    let count = match memo.get_mut::<u64>("counter") {
        Some(counter) => {
            *counter += 1;
            *counter
        }
        None => {
            memo.insert("counter", 1u64);
            1
        }
    };
    if count == EVENTS_PER_RESOURCE.load(Ordering::Relaxed) {
        RESOURCES_DONE.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the hand-written baseline calls per event: the same counting on a plain `u64`.
#[inline(never)]
pub fn count_by_hand(counter: &mut u64, done: &mut usize) {
    *counter += 1;
    if *counter == EVENTS_PER_RESOURCE.load(Ordering::Relaxed) {
        *done += 1;
    }
}

#[handler(event = "Ping")]
fn pinged(memo: &mut Memo) {
    count(memo);
}

#[handler(event = "Burn")]
fn burned(memo: &mut Memo) {
    burn(BURN_ITERATIONS.load(Ordering::Relaxed));
    count(memo);
}

#[handler(event = "Fresh")]
fn fresh(memo: &mut Memo) {
    count(memo);
}

#[handler(event = "Keep")]
fn keep(memo: &mut Memo) {
    memo.insert("counter", 1u64);
    memo.insert("seen", true);
    EVENTS_SEEN.fetch_add(1, Ordering::Release);
}

#[handler(create = "Track")]
fn track_created(memo: &mut Memo) {
    memo.insert("counter", 1u64);
    memo.insert("seen", true);
    EVENTS_SEEN.fetch_add(1, Ordering::Release);
}

#[handler(update = "Track")]
fn track_updated(diff: &Diff) {
    black_box(diff);
}

#[handler(event = "Plain")]
fn plain() {
    EVENTS_SEEN.fetch_add(1, Ordering::Release);
}

#[handler(event = "Injected")]
fn injected(memo: &Memo, name: &str, namespace: Option<&str>, logger: &Logger) {
    black_box((memo, name, namespace, logger));
    EVENTS_SEEN.fetch_add(1, Ordering::Release);
}

/// Spins for `iterations` steps of a linear congruential generator. `black_box` on every step
/// keeps the compiler from folding the loop, so the time is proportional to `iterations`.
pub fn burn(iterations: u64) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..iterations {
        state = black_box(
            state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
    black_box(state);
}

/// Finds how many [`burn`] iterations take `micros` µs on this machine, and makes the `Burn`
/// handler use that many. Returns the iterations.
pub fn calibrate_burn(micros: f64) -> u64 {
    const PROBE: u64 = 2_000_000;
    let mut fastest = f64::INFINITY;
    // The fastest of a few probes: the others were slowed down by something else.
    for _ in 0..5 {
        let start = std::time::Instant::now();
        burn(PROBE);
        fastest = fastest.min(start.elapsed().as_secs_f64());
    }
    let iterations = ((PROBE as f64 * micros * 1e-6 / fastest).round() as u64).max(1);
    BURN_ITERATIONS.store(iterations, Ordering::SeqCst);
    iterations
}
