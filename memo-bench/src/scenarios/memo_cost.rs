//! Measurement 3, memo creation cost as a resource first appears, with an operator memo of 0,
//! 10, 100 and 1000 keys: directly (`Memo::clone` + the first insert, which is when the resource
//! memo gets its own layer) and through the operator (an `ADDED` event for a new resource each
//! time).

use crate::handlers::{self, FRESH};
use crate::report::{Goal, Report};
use crate::stats::{Samples, nanos_per, paired_ratios};
use crate::{Config, workload};
use memo_runtime::Memo;
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const KEY_COUNTS: [usize; 4] = [0, 10, 100, 1000];

/// Rounds of the direct measurement. Each takes a few milliseconds, so many short interleaved
/// rounds are cheap and make the median ratio robust to a neighbour's burst of activity.
const DIRECT_ROUNDS: usize = 31;

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    let memos: Vec<Memo> = KEY_COUNTS.iter().map(|&keys| operator_memo(keys)).collect();
    let mut direct = vec![Samples::default(); KEY_COUNTS.len()];
    for _ in 0..DIRECT_ROUNDS {
        for (samples, memo) in direct.iter_mut().zip(&memos) {
            samples.push(nanos_per(
                config.memo_clones,
                clone_and_insert(memo, config.memo_clones),
            ));
        }
    }
    let mut operator = vec![Samples::default(); KEY_COUNTS.len()];
    for _ in 0..config.rounds {
        for (samples, memo) in operator.iter_mut().zip(&memos) {
            samples.push(nanos_per(config.fresh_events, new_resources(runtime, config, memo)));
        }
    }
    let last = KEY_COUNTS.len() - 1;
    let direct_ratio = paired_ratios(&direct[last], &direct[0]);
    let operator_ratio = paired_ratios(&operator[last], &operator[0]);

    report.section("3. Memo creation cost as a resource first appears (operator memo of N keys)");
    for (index, keys) in KEY_COUNTS.iter().enumerate() {
        report.row(
            format!("Memo::clone + first insert, {keys} keys"),
            format!("{:.1} ns", direct[index].median()),
            ratio_note(&direct[index], &direct[0]),
        );
    }
    for (index, keys) in KEY_COUNTS.iter().enumerate() {
        report.row(
            format!("new resource through Operator, {keys} keys"),
            format!("{:.0} ns/event", operator[index].median()),
            ratio_note(&operator[index], &operator[0]),
        );
    }
    report.row("kopf copy.copy(memo), 0 keys (reference)", "1,500 ns", "");
    report.row(
        "kopf copy.copy(memo), 1000 keys (reference)",
        "37,500 ns",
        "25x the 0-key case",
    );
    let by_keys = |samples: &[Samples]| -> serde_json::Map<String, serde_json::Value> {
        KEY_COUNTS
            .iter()
            .zip(samples)
            .map(|(keys, samples)| (keys.to_string(), samples.to_json()))
            .collect()
    };
    report.figures(
        "memo_creation",
        json!({
            "clone_and_insert_ns": by_keys(&direct),
            "operator_new_resource_ns_per_event": by_keys(&operator),
            "clone_and_insert_ratio_1000_to_0": direct_ratio.to_json(),
            "operator_ratio_1000_to_0": operator_ratio.to_json(),
            "direct_rounds": DIRECT_ROUNDS,
            "repetitions_per_round": config.memo_clones,
            "operator_events": config.fresh_events,
        }),
    );
    report.target(
        "memo creation: 1000-key / 0-key cost (clone + first insert)",
        direct_ratio.median(),
        Goal::AtMost,
        1.5,
    );
}

fn ratio_note(samples: &Samples, zero_keys: &Samples) -> String {
    format!("{:.2}x 0 keys", paired_ratios(samples, zero_keys).median())
}

/// An operator memo holding `keys` small values, as a startup handler would leave it.
fn operator_memo(keys: usize) -> Memo {
    let mut memo = Memo::new();
    for index in 0..keys {
        memo.insert(format!("setting-{index}"), index as u64);
    }
    memo
}

/// What a resource's first appearance does to its memo: a clone of the operator memo, then the
/// first write (which gives the resource memo a layer of its own), then the drop at deletion.
fn clone_and_insert(operator_memo: &Memo, repetitions: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..repetitions {
        let mut memo = black_box(operator_memo).clone();
        memo.insert("counter", 1u64);
        black_box(&memo);
    }
    start.elapsed()
}

/// `fresh_events` `ADDED` events, each for a new resource, through a 1-worker operator.
fn new_resources(runtime: &Runtime, config: &Config, operator_memo: &Memo) -> Duration {
    handlers::expect(1);
    let events = workload::all_new(FRESH, config.fresh_events);
    let elapsed = runtime.block_on(workload::run_operator(events, 1, operator_memo.clone()));
    assert_eq!(
        handlers::resources_done(),
        config.fresh_events,
        "the operator missed events"
    );
    elapsed
}
