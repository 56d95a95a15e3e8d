//! Measurement 4, memory per resource: bytes the operator retains per tracked resource whose
//! memo holds two small keys, with 100,000 resources held at once, counted by the bench's global
//! allocator.
//!
//! Two more figures break the total down: the same run with a handler that writes nothing (the
//! runtime's own bookkeeping per resource), and memos with the same two keys on their own. A
//! hand-written `HashMap<String, (u64, bool)>` gives the floor.

use crate::handlers::{self, KEEP, PLAIN, TRACK};
use crate::report::{Goal, Report};
use crate::stats::{Samples, grouped};
use crate::{Config, alloc, workload};
use memo_runtime::Memo;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The allocation counts are nearly deterministic: three rounds are plenty.
const ROUNDS: usize = 3;

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    let resources = config.memory_resources;
    let mut with_memo = Samples::default();
    let mut bookkeeping = Samples::default();
    let mut memo_alone = Samples::default();
    let mut by_hand = Samples::default();
    let mut with_updates = Samples::default();
    let mut replicas: [Samples; 3] = Default::default();
    let mut replica_times: [Samples; 3] = Default::default();
    // Per process: N = 1, 2, 3, and a replica that owns nothing (the stream alone).
    let mut process_rss: [Samples; 4] = Default::default();
    let mut process_cpu: [Samples; 4] = Default::default();
    for _ in 0..ROUNDS {
        for (index, (rss, cpu)) in process_rss.iter_mut().zip(process_cpu.iter_mut()).enumerate() {
            let count = if index == 3 { 0 } else { index as u64 + 1 };
            let figures = super::replica_process::measure(resources * 2, count);
            rss.push(figures.rss_bytes);
            cpu.push(figures.cpu_nanos);
        }
        for (index, (samples, times)) in replicas.iter_mut().zip(replica_times.iter_mut()).enumerate() {
            let count = index as u64 + 1;
            let (bytes, elapsed) = held_by_replica(runtime, resources, count);
            samples.push(per_resource(bytes, resources));
            times.push(elapsed.as_nanos() as f64 / resources as f64);
        }
        with_memo.push(per_resource(held_by_operator(runtime, KEEP, resources), resources));
        with_updates.push(per_resource(held_by_operator(runtime, TRACK, resources), resources));
        bookkeeping.push(per_resource(held_by_operator(runtime, PLAIN, resources), resources));
        memo_alone.push(per_resource(two_key_memos(resources), resources));
        by_hand.push(per_resource(hand_written(resources), resources));
    }

    report.section(format!(
        "4. Memory per resource ({} resources held, memo with 2 small keys)",
        grouped(resources as f64)
    ));
    report.row("memo Operator, memo with 2 keys", bytes(&with_memo), "total retained");
    report.row(
        "  of which runtime bookkeeping",
        bytes(&bookkeeping),
        "same run, handler writes nothing",
    );
    report.row(
        "  of which the memo itself",
        bytes(&memo_alone),
        "Memo + 2 inserts, measured alone",
    );
    report.row(
        "same, kind with an update handler",
        bytes(&with_updates),
        "keeps the last object handled (shared with the event)",
    );
    for (index, (samples, times)) in replicas.iter().zip(&replica_times).enumerate() {
        report.row(
            format!("one of {} replicas, per watched object", index + 1),
            format!("{}, {:.0} ns", bytes(samples), times.median()),
            "reads every event, keeps its share (--shard 0/N); bytes, wall time",
        );
    }
    for (index, (rss, cpu)) in process_rss.iter().zip(&process_cpu).enumerate() {
        let who = match index {
            3 => "a replica owning nothing".to_owned(),
            index => format!("one of {} replicas", index + 1),
        };
        report.row(
            format!("{who}, own process, per watched object"),
            format!("{} RSS, {:.0} ns CPU", bytes(rss), cpu.median()),
            "JSON stream of new resources, --shard 0/N; resident set and CPU time grown",
        );
    }
    report.row("hand-written HashMap<String, (u64, bool)>", bytes(&by_hand), "baseline");
    report.row("kopf 1.45.2 per watched object (reference)", "~950 bytes", "");
    report.figures(
        "memory",
        json!({
            "resources": resources,
            "operator_with_memo_bytes_per_resource": with_memo.to_json(),
            "operator_bookkeeping_bytes_per_resource": bookkeeping.to_json(),
            "memo_alone_bytes_per_resource": memo_alone.to_json(),
            "operator_with_update_handler_bytes_per_resource": with_updates.to_json(),
            "replica_of_1_bytes_per_watched_object": replicas[0].to_json(),
            "replica_of_2_bytes_per_watched_object": replicas[1].to_json(),
            "replica_of_3_bytes_per_watched_object": replicas[2].to_json(),
            "replica_of_1_nanos_per_watched_object": replica_times[0].to_json(),
            "replica_of_2_nanos_per_watched_object": replica_times[1].to_json(),
            "replica_of_3_nanos_per_watched_object": replica_times[2].to_json(),
            "process_replica_of_1_rss_bytes_per_watched_object": process_rss[0].to_json(),
            "process_replica_of_2_rss_bytes_per_watched_object": process_rss[1].to_json(),
            "process_replica_of_3_rss_bytes_per_watched_object": process_rss[2].to_json(),
            "process_replica_owning_nothing_rss_bytes_per_watched_object": process_rss[3].to_json(),
            "process_replica_of_1_cpu_nanos_per_watched_object": process_cpu[0].to_json(),
            "process_replica_of_2_cpu_nanos_per_watched_object": process_cpu[1].to_json(),
            "process_replica_of_3_cpu_nanos_per_watched_object": process_cpu[2].to_json(),
            "process_replica_owning_nothing_cpu_nanos_per_watched_object": process_cpu[3].to_json(),
            "baseline_bytes_per_resource": by_hand.to_json(),
        }),
    );
    report.target(
        "memory: bytes retained per resource (memo with 2 keys)",
        with_memo.median(),
        Goal::AtMost,
        300.0,
    );
    report.target(
        "memory per watched object, one of 3 replicas / one replica alone",
        replicas[2].median() / replicas[0].median(),
        Goal::AtMost,
        0.5,
    );
    report.target(
        "RSS per watched object, one of 3 replica processes / one alone",
        process_rss[2].median() / process_rss[0].median(),
        Goal::AtMost,
        0.5,
    );
}

fn bytes(samples: &Samples) -> String {
    format!("{:.0} bytes", samples.median())
}

fn per_resource(bytes: isize, resources: usize) -> f64 {
    bytes as f64 / resources as f64
}

/// Net bytes allocated while an operator holds `resources` resources of `kind`, each after one
/// `ADDED` event.
///
/// The events are built inside the counting window: the operator frees each one after handling
/// it, and those frees must cancel their allocations rather than lower the count. The producer
/// frees the event buffer before the count is read and keeps the source open until then, so
/// the operator still holds every resource.
fn held_by_operator(runtime: &Runtime, kind: &str, resources: usize) -> isize {
    handlers::expect(1);
    alloc::start();
    let events = workload::all_new(kind, resources);
    let retained = runtime.block_on(async {
        let mut operator = workload::HeldOperator::start(events, 1, Memo::new());
        operator.all_sent().await;
        while handlers::events_seen() < resources {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let retained = alloc::live();
        operator.finish().await;
        retained
    });
    alloc::stop();
    retained
}

/// Net bytes allocated while replica 0 of `count` holds its share of `resources` resources of
/// the `Keep` kind, every one of whose `ADDED` events it read.
fn held_by_replica(runtime: &Runtime, resources: usize, count: u64) -> (isize, Duration) {
    let shard = memo_runtime::shard::Shard::new(0, count).expect("a replica");
    let mine = (0..resources)
        .filter(|index| shard.owns(&format!("uid-{KEEP}-{index}")))
        .count();
    handlers::expect(1);
    alloc::start();
    let events = workload::all_new(KEEP, resources);
    let started = std::time::Instant::now();
    let retained = runtime.block_on(async {
        let mut operator = workload::HeldOperator::start_replica(events, 1, Memo::new(), Some((0, count)));
        operator.all_sent().await;
        while handlers::events_seen() < mine {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let retained = (alloc::live(), started.elapsed());
        operator.finish().await;
        retained
    });
    alloc::stop();
    retained
}

/// Net bytes of `count` memos holding the same two keys as the `Keep` handler writes.
fn two_key_memos(count: usize) -> isize {
    let mut memos: Vec<Memo> = Vec::with_capacity(count);
    alloc::start();
    for _ in 0..count {
        let mut memo = Memo::new();
        memo.insert("counter", 1u64);
        memo.insert("seen", true);
        memos.push(memo);
    }
    let retained = alloc::live();
    alloc::stop();
    drop(memos);
    retained
}

/// Net bytes of a hand-written map from uid to the same two values.
fn hand_written(count: usize) -> isize {
    alloc::start();
    let map: HashMap<String, (u64, bool)> = (0..count)
        .map(|index| (format!("uid-{KEEP}-{index}"), (1, true)))
        .collect();
    let retained = alloc::live();
    alloc::stop();
    drop(map);
    retained
}
