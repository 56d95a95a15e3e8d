//! Measurement 2, parallel scaling: a handler that burns about 5 µs of CPU per event, with 2
//! workers against 1 worker.
//!
//! Beside the two operator figures: the handler's work alone on 1 and 2 threads (what the
//! machine can do), two 1-worker operators sharded by uid (what a sharded dispatcher could do),
//! and how many cores each operator run kept busy (idle cores and runtime overhead look alike in
//! throughput alone).

use crate::handlers::{self, BURN};
use crate::report::{Goal, Report};
use crate::stats::{Samples, grouped, paired_ratios, per_second, process_cpu_time};
use crate::{Config, workload};
use memo_runtime::{Event, Memo};
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// CPU time each event burns in its handler.
const BURN_MICROS: f64 = 5.0;

/// Throughput and busy cores of one way of running the events, over the rounds.
#[derive(Default)]
struct Figure {
    events_per_second: Samples,
    cores_busy: Samples,
    cpu_micros_per_event: Samples,
}

impl Figure {
    fn push(&mut self, events: usize, wall: Duration, cpu: Option<Duration>) {
        self.events_per_second.push(per_second(events, wall));
        self.cores_busy
            .push(cpu.map_or(f64::NAN, |cpu| cpu.as_secs_f64() / wall.as_secs_f64()));
        self.cpu_micros_per_event
            .push(cpu.map_or(f64::NAN, |cpu| cpu.as_secs_f64() * 1e6 / events as f64));
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "events_per_second": self.events_per_second.to_json(),
            "cores_busy": self.cores_busy.to_json(),
            "cpu_micros_per_event": self.cpu_micros_per_event.to_json(),
        })
    }
}

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    let iterations = handlers::calibrate_burn(BURN_MICROS);
    let mut alone = [Samples::default(), Samples::default()];
    let mut workers = [Figure::default(), Figure::default()];
    let mut sharded = Figure::default();
    for _ in 0..config.rounds {
        for (index, samples) in alone.iter_mut().enumerate() {
            samples.push(per_second(
                config.burn_events,
                burn_alone(config.burn_events, index + 1, iterations),
            ));
        }
        for (index, figure) in workers.iter_mut().enumerate() {
            let (wall, cpu) = timed_run(runtime, config, |events| {
                workload::run_operator(events, index + 1, Memo::new())
            });
            figure.push(config.burn_events, wall, cpu);
        }
        let (wall, cpu) = timed_run(runtime, config, |events| workload::run_sharded(events, 2, Memo::new()));
        sharded.push(config.burn_events, wall, cpu);
    }
    let speedup = paired_ratios(&workers[1].events_per_second, &workers[0].events_per_second);
    let sharded_speedup = paired_ratios(&sharded.events_per_second, &workers[0].events_per_second);
    let alone_speedup = paired_ratios(&alone[1], &alone[0]);

    report.section(format!(
        "2. Parallel scaling ({} events over {} resources, handler burns ~{BURN_MICROS} µs of CPU)",
        grouped(config.burn_events as f64),
        grouped(config.resources as f64)
    ));
    report.row(
        "handler work alone, 1 thread",
        eps(&alone[0]),
        format!("{:.1} µs/event: what 1 core can do", 1e6 / alone[0].median()),
    );
    report.row(
        "handler work alone, 2 threads",
        eps(&alone[1]),
        format!("{:.2}x 1 thread", alone_speedup.median()),
    );
    report.row(
        "memo Operator, 1 worker",
        eps(&workers[0].events_per_second),
        busy(&workers[0]),
    );
    report.row(
        "memo Operator, 2 workers",
        eps(&workers[1].events_per_second),
        format!("{:.2}x 1 worker, {}", speedup.median(), busy(&workers[1])),
    );
    report.row(
        "2 x Operator(1 worker), events sharded by uid",
        eps(&sharded.events_per_second),
        format!("{:.2}x 1 worker, {}", sharded_speedup.median(), busy(&sharded)),
    );
    report.figures(
        "scaling",
        json!({
            "events": config.burn_events,
            "resources": config.resources,
            "burn_micros": BURN_MICROS,
            "burn_iterations": iterations,
            "work_alone_1_thread_events_per_second": alone[0].to_json(),
            "work_alone_2_threads_events_per_second": alone[1].to_json(),
            "workers_1": workers[0].to_json(),
            "workers_2": workers[1].to_json(),
            "sharded_2x1": sharded.to_json(),
            "speedup": speedup.to_json(),
            "sharded_speedup": sharded_speedup.to_json(),
        }),
    );
    report.target(
        "scaling: 2-worker / 1-worker throughput, 5 µs handler",
        speedup.median(),
        Goal::AtLeast,
        1.7,
    );
}

fn eps(samples: &Samples) -> String {
    format!("{} events/s", grouped(samples.median()))
}

/// Where the throughput went: cores kept busy, and CPU time spent per event by all threads.
fn busy(figure: &Figure) -> String {
    format!(
        "{:.2} cores busy, {:.1} µs CPU/event",
        figure.cores_busy.median(),
        figure.cpu_micros_per_event.median()
    )
}

/// Builds the events, then times `run` over them: wall time and the CPU time of all threads.
fn timed_run<F, R>(runtime: &Runtime, config: &Config, run: F) -> (Duration, Option<Duration>)
where
    F: FnOnce(Vec<Event>) -> R,
    R: Future<Output = Duration>,
{
    handlers::expect((config.burn_events / config.resources) as u64);
    let events = workload::round_robin(BURN, config.burn_events, config.resources);
    let cpu_before = process_cpu_time();
    let wall = runtime.block_on(run(events));
    let cpu = process_cpu_time().zip(cpu_before).map(|(after, before)| after - before);
    assert_eq!(
        handlers::resources_done(),
        config.resources,
        "the operator missed events"
    );
    (wall, cpu)
}

/// The handler's work with no runtime at all, split over `threads` threads.
fn burn_alone(events: usize, threads: usize, iterations: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| (0..events / threads).for_each(|_| handlers::burn(iterations)));
        }
    });
    start.elapsed()
}
