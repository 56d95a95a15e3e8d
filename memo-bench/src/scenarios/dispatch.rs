//! Measurement 1, dispatch throughput: events round-robin over many resources, each
//! incrementing a counter in its resource's memo, through the operator with 1 and 2 workers,
//! against a hand-written loop doing the same counting with a `HashMap` and a direct call.

use crate::handlers::{self, PING};
use crate::report::{Goal, Report};
use crate::stats::{Samples, grouped, paired_ratios, per_second};
use crate::{Config, workload};
use memo_runtime::{Event, Memo};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    let (events, resources) = (config.dispatch_events, config.resources);
    let mut drop_only = Samples::default();
    let mut by_hand = Samples::default();
    let mut over_channel = Samples::default();
    let mut over_mpsc = Samples::default();
    let mut workers = [Samples::default(), Samples::default()];
    let mut sharded = Samples::default();
    let mut apart = Samples::default();
    let mut stream_by_hand = Samples::default();
    let mut stream_workers = [Samples::default(), Samples::default()];
    for _ in 0..config.rounds {
        drop_only.push(per_second(events, dropping_alone(config)));
        by_hand.push(per_second(events, hand_written(config)));
        over_channel.push(per_second(
            events,
            hand_written_over(runtime, config, Transport::Channel),
        ));
        over_mpsc.push(per_second(events, hand_written_over(runtime, config, Transport::Mpsc)));
        for (index, samples) in workers.iter_mut().enumerate() {
            samples.push(per_second(events, through_operator(runtime, config, index + 1)));
        }
        sharded.push(per_second(events, sharded_by_hand(runtime, config)));
        apart.push(per_second(events, apart_by_hand(runtime, config)));
        stream_by_hand.push(per_second(events, stream_hand_written(config)));
        for (index, samples) in stream_workers.iter_mut().enumerate() {
            samples.push(per_second(events, stream_through_operator(runtime, config, index + 1)));
        }
    }
    let transport_ratios = [
        paired_ratios(&over_channel, &by_hand),
        paired_ratios(&over_mpsc, &by_hand),
    ];
    let ratios = [
        paired_ratios(&workers[0], &by_hand),
        paired_ratios(&workers[1], &by_hand),
    ];
    let sharded_ratio = paired_ratios(&sharded, &by_hand);
    let apart_ratio = paired_ratios(&apart, &by_hand);
    let stream_ratios = [
        paired_ratios(&stream_workers[0], &stream_by_hand),
        paired_ratios(&stream_workers[1], &stream_by_hand),
    ];

    report.section(format!(
        "1. Dispatch throughput ({} events round-robin over {} resources, handler increments a memo counter)",
        grouped(events as f64),
        grouped(resources as f64)
    ));
    report.row(
        "dropping the pre-built events alone",
        eps(&drop_only),
        "cost both sides pay",
    );
    report.row("hand-written loop (HashMap + direct call)", eps(&by_hand), "baseline");
    report.row(
        "the same loop in a task, fed by memo's source::channel from another task",
        eps(&over_channel),
        format!(
            "{:.2}x baseline: what the transport costs",
            transport_ratios[0].median()
        ),
    );
    report.row(
        "the same loop in a task, fed by tokio::sync::mpsc (recv_many 64)",
        eps(&over_mpsc),
        format!("{:.2}x baseline: memo's channel before", transport_ratios[1].median()),
    );
    for (index, (samples, ratio)) in workers.iter().zip(&ratios).enumerate() {
        let label = format!(
            "memo Operator, {} worker{}",
            index + 1,
            if index == 0 { "" } else { "s" }
        );
        report.row(label, eps(samples), format!("{:.2}x baseline", ratio.median()));
    }
    report.row(
        "2 x memo Operator (1 worker each), sharded by uid in the producer",
        eps(&sharded),
        format!("{:.2}x baseline: two independent engines", sharded_ratio.median()),
    );
    report.row(
        "2 x memo Operator (1 worker each), each fed its half by a producer of its own",
        eps(&apart),
        format!("{:.2}x baseline: nothing shared at all", apart_ratio.median()),
    );
    report.row(
        "JSON watch stream, hand-written loop (serde_json StreamDeserializer + HashMap)",
        eps(&stream_by_hand),
        "baseline for the stream rows",
    );
    for (index, (samples, ratio)) in stream_workers.iter().zip(&stream_ratios).enumerate() {
        let label = format!(
            "JSON watch stream through the Operator, {} worker{}",
            index + 1,
            if index == 0 { "" } else { "s" }
        );
        report.row(label, eps(samples), format!("{:.2}x stream baseline", ratio.median()));
    }
    report.row("kopf 1.45.2, sync handler, 1 core (reference)", "3,700 events/s", "");
    report.row("kopf 1.45.2, async handler, 1 core (reference)", "5,900 events/s", "");
    report.figures(
        "dispatch",
        json!({
            "events": events,
            "resources": resources,
            "drop_only_events_per_second": drop_only.to_json(),
            "baseline_events_per_second": by_hand.to_json(),
            "over_channel_events_per_second": over_channel.to_json(),
            "over_mpsc_events_per_second": over_mpsc.to_json(),
            "over_channel_ratio": transport_ratios[0].to_json(),
            "over_mpsc_ratio": transport_ratios[1].to_json(),
            "workers_1_events_per_second": workers[0].to_json(),
            "workers_2_events_per_second": workers[1].to_json(),
            "workers_1_ratio": ratios[0].to_json(),
            "workers_2_ratio": ratios[1].to_json(),
            "sharded_2_events_per_second": sharded.to_json(),
            "sharded_2_ratio": sharded_ratio.to_json(),
            "apart_2_events_per_second": apart.to_json(),
            "apart_2_ratio": apart_ratio.to_json(),
            "stream_baseline_events_per_second": stream_by_hand.to_json(),
            "stream_workers_1_events_per_second": stream_workers[0].to_json(),
            "stream_workers_2_events_per_second": stream_workers[1].to_json(),
            "stream_workers_1_ratio": stream_ratios[0].to_json(),
            "stream_workers_2_ratio": stream_ratios[1].to_json(),
        }),
    );
    report.target(
        "dispatch: 1-worker throughput / hand-written loop",
        ratios[0].median(),
        Goal::AtLeast,
        0.5,
    );
}

fn eps(samples: &Samples) -> String {
    format!("{} events/s", grouped(samples.median()))
}

/// Events for one run of either side, and the checks' expectation.
fn prepare(config: &Config) -> Vec<Event> {
    handlers::expect((config.dispatch_events / config.resources) as u64);
    workload::round_robin(PING, config.dispatch_events, config.resources)
}

/// What every consumer of the events pays whatever it does: freeing them. They were built
/// before the clock started, so they are cold in the caches by now (a real watch stream parses
/// each event just before dispatching it, so there they are hot); this row shows how much of
/// both sides' time goes to that.
fn dropping_alone(config: &Config) -> Duration {
    let events = prepare(config);
    let start = Instant::now();
    for event in events {
        drop(std::hint::black_box(event));
    }
    start.elapsed()
}

/// The baseline: what a user would write without the runtime (a std `HashMap`, so SipHash; the
/// runtime uses ahash). It owns the events and drops them as it goes, as the operator does, and
/// drops its map inside the timing, as the operator drops its resources.
fn hand_written(config: &Config) -> Duration {
    let events = prepare(config);
    let start = Instant::now();
    let mut counters: HashMap<String, u64> = HashMap::new();
    let mut done = 0;
    for event in events {
        let uid = event.uid().expect("every benchmark event has a uid");
        count_uid(&mut counters, uid, &mut done);
    }
    drop(counters);
    let elapsed = start.elapsed();
    assert_eq!(done, config.resources, "the hand-written loop missed events");
    elapsed
}

/// How [`hand_written_over`] gets its events.
#[derive(Clone, Copy)]
enum Transport {
    /// `memo_runtime::source::channel`, read with `EventSource::next`, as the operator reads it.
    Channel,
    /// A bounded `tokio::sync::mpsc` channel of the same capacity, taken 64 at a time: what
    /// `source::channel` was until issue 18.
    Mpsc,
}

/// The hand-written loop in a task of the runtime, its events sent by a producer task as
/// [`workload::run_operator`] sends them: the cost of moving events between two tasks, apart
/// from anything the operator does with them.
fn hand_written_over(runtime: &Runtime, config: &Config, transport: Transport) -> Duration {
    let events = prepare(config);
    let resources = config.resources;
    runtime.block_on(async move {
        let start = Instant::now();
        let consumer = match transport {
            Transport::Channel => {
                let (sender, mut source) = memo_runtime::source::channel(workload::CHANNEL_CAPACITY);
                tokio::spawn(async move {
                    for event in events {
                        sender.send(event).await.expect("the consumer reads");
                    }
                });
                tokio::spawn(async move {
                    let mut counting = Counting::default();
                    while let Some(event) = source.next().await {
                        counting.count(&event);
                    }
                    counting.done
                })
            }
            Transport::Mpsc => {
                let (sender, mut receiver) = tokio::sync::mpsc::channel::<Event>(workload::CHANNEL_CAPACITY);
                tokio::spawn(async move {
                    for event in events {
                        sender.send(event).await.expect("the consumer reads");
                    }
                });
                tokio::spawn(async move {
                    let (mut counting, mut batch) = (Counting::default(), Vec::with_capacity(64));
                    while receiver.recv_many(&mut batch, 64).await > 0 {
                        batch.drain(..).for_each(|event| counting.count(&event));
                    }
                    counting.done
                })
            }
        };
        let done = consumer.await.expect("the consumer panicked");
        let elapsed = start.elapsed();
        assert_eq!(done, resources, "the loop missed events");
        elapsed
    })
}

/// The hand-written loop's state, fed one event at a time.
#[derive(Default)]
struct Counting {
    counters: HashMap<String, u64>,
    done: usize,
}

impl Counting {
    fn count(&mut self, event: &Event) {
        let uid = event.uid().expect("every benchmark event has a uid");
        count_uid(&mut self.counters, uid, &mut self.done);
    }
}

/// What both hand-written loops do per event: count it under its uid, allocating the key once.
fn count_uid(counters: &mut HashMap<String, u64>, uid: &str, done: &mut usize) {
    match counters.get_mut(uid) {
        Some(counter) => handlers::count_by_hand(counter, done),
        None => handlers::count_by_hand(counters.entry(uid.to_owned()).or_insert(0), done),
    }
}

fn through_operator(runtime: &Runtime, config: &Config, workers: usize) -> Duration {
    let events = prepare(config);
    let elapsed = runtime.block_on(workload::run_operator(events, workers, Memo::new()));
    every_resource_done(config, "the operator");
    elapsed
}

/// Checks that every resource got all its events, naming `who` if not.
fn every_resource_done(config: &Config, who: &str) {
    assert_eq!(handlers::resources_done(), config.resources, "{who} missed events");
}

/// Two operators of one worker each, the producer sending each event to the one its uid hashes
/// to: two engines that share nothing, as a ceiling for what a second worker can add.
fn sharded_by_hand(runtime: &Runtime, config: &Config) -> Duration {
    let events = prepare(config);
    let elapsed = runtime.block_on(workload::run_sharded(events, 2, Memo::new()));
    every_resource_done(config, "the sharded operators");
    elapsed
}

/// Two operators of one worker each, the events split between them by uid before the clock
/// starts, each half sent by a producer of its own.
fn apart_by_hand(runtime: &Runtime, config: &Config) -> Duration {
    let events = prepare(config);
    let hasher = std::collections::hash_map::RandomState::new();
    let mut parts = vec![
        Vec::with_capacity(events.len() / 2 + 1),
        Vec::with_capacity(events.len() / 2 + 1),
    ];
    for event in events {
        let uid = event.uid().expect("every benchmark event has a uid");
        parts[(std::hash::BuildHasher::hash_one(&hasher, uid) % 2) as usize].push(event);
    }
    let elapsed = runtime.block_on(workload::run_apart(parts, Memo::new()));
    every_resource_done(config, "the operators fed apart");
    elapsed
}

/// The same events as a `kubectl --watch -o json` stream, one document per line.
fn watch_stream(config: &Config) -> Vec<u8> {
    let mut bytes = Vec::new();
    for event in prepare(config) {
        let document = json!({"type": event.r#type.as_str(), "object": *event.object});
        serde_json::to_writer(&mut bytes, &document).expect("events serialize");
        bytes.push(b'\n');
    }
    bytes
}

/// The stream baseline: parse each document with serde_json's stream deserializer and count it
/// by uid, as a user would without the runtime.
fn stream_hand_written(config: &Config) -> Duration {
    let bytes = watch_stream(config);
    let start = Instant::now();
    let mut counters: HashMap<String, u64> = HashMap::new();
    let mut done = 0;
    for document in serde_json::Deserializer::from_slice(&bytes).into_iter::<serde_json::Value>() {
        let document = document.expect("the benchmark stream is valid");
        let uid = document["object"]["metadata"]["uid"]
            .as_str()
            .expect("every benchmark event has a uid");
        count_uid(&mut counters, uid, &mut done);
    }
    drop(counters);
    let elapsed = start.elapsed();
    assert_eq!(done, config.resources, "the hand-written stream loop missed events");
    elapsed
}

fn stream_through_operator(runtime: &Runtime, config: &Config, workers: usize) -> Duration {
    let bytes = watch_stream(config);
    let elapsed = runtime.block_on(workload::run_stream(bytes, workers));
    every_resource_done(config, "the operator reading the stream");
    elapsed
}
