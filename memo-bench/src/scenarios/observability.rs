//! Measurement 8, the cost of being observed (issue 12): the dispatch of measurement 1 with the
//! liveness endpoint on (every handler call timed and counted, gauges published per loop turn)
//! against the same operator without it; and a handler's `tracing` span under a subscriber that
//! formats it against one that filters everything out.

use crate::handlers::{self, PING};
use crate::report::{Goal, Report};
use crate::stats::{Samples, grouped, nanos_per, paired_differences, paired_ratios, per_second};
use crate::{Config, workload};
use memo_runtime::Memo;
use serde_json::json;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::runtime::Runtime;

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    // As in measurement 6: the differences sought are a few percent, so many short rounds whose
    // events fit in the caches, each pairing the two sides back to back.
    let (events, resources, rounds) = (
        config.injection_events,
        config.injection_resources,
        config.injection_rounds,
    );
    let mut off = [Samples::default(), Samples::default()];
    let mut on = [Samples::default(), Samples::default()];
    for _ in 0..rounds {
        for workers in [1, 2] {
            off[workers - 1].push(per_second(events, dispatch(runtime, events, resources, workers, false)));
            on[workers - 1].push(per_second(events, dispatch(runtime, events, resources, workers, true)));
        }
    }
    let ratios = [paired_ratios(&on[0], &off[0]), paired_ratios(&on[1], &off[1])];

    install_subscriber();
    let mut quiet = Samples::default();
    let mut logging = Samples::default();
    for _ in 0..rounds {
        quiet.push(nanos_per(events, dispatch(runtime, events, resources, 1, false)));
        switch_logging(true);
        logging.push(nanos_per(events, dispatch(runtime, events, resources, 1, false)));
        switch_logging(false);
    }
    let span_cost = paired_differences(&logging, &quiet);

    report.section(format!(
        "8. Observability ({} events round-robin over {} resources, {} paired rounds)",
        grouped(events as f64),
        grouped(resources as f64),
        rounds
    ));
    for (index, workers) in ["1 worker", "2 workers"].iter().enumerate() {
        report.row(format!("{workers}, no liveness endpoint"), eps(&off[index]), "baseline");
        report.row(
            format!("{workers}, --liveness (metrics counted)"),
            eps(&on[index]),
            format!("{:.3}x", ratios[index].median()),
        );
    }
    report.row(
        "1 worker, a subscriber filtering every event and span out",
        format!("{:.0} ns/event", quiet.median()),
        "baseline",
    );
    report.row(
        "1 worker, fmt subscriber (text, no colors) at INFO into a sink: a span per handler call",
        format!("{:.0} ns/event", logging.median()),
        format!("{:+.0} ns/event", span_cost.median()),
    );
    report.figures(
        "observability",
        json!({
            "events": events,
            "resources": resources,
            "workers_1_off_events_per_second": off[0].to_json(),
            "workers_1_on_events_per_second": on[0].to_json(),
            "workers_2_off_events_per_second": off[1].to_json(),
            "workers_2_on_events_per_second": on[1].to_json(),
            "workers_1_ratio": ratios[0].to_json(),
            "workers_2_ratio": ratios[1].to_json(),
            "quiet_subscriber_ns_per_event": quiet.to_json(),
            "fmt_subscriber_ns_per_event": logging.to_json(),
            "span_cost_ns_per_event": span_cost.to_json(),
        }),
    );
    report.target(
        "observability: 1-worker throughput with --liveness / without",
        ratios[0].median(),
        Goal::AtLeast,
        0.95,
    );
}

fn eps(samples: &Samples) -> String {
    format!("{} events/s", grouped(samples.median()))
}

fn dispatch(runtime: &Runtime, events: usize, resources: usize, workers: usize, liveness: bool) -> std::time::Duration {
    handlers::expect((events / resources) as u64);
    let batch = workload::round_robin(PING, events, resources);
    let elapsed = if liveness {
        runtime.block_on(workload::run_operator_with_liveness(batch, workers))
    } else {
        runtime.block_on(workload::run_operator(batch, workers, Memo::new()))
    };
    assert_eq!(handlers::resources_done(), resources, "the operator missed events");
    elapsed
}

/// Whether the subscriber lets INFO and above through (to a formatter writing into a sink).
static LOGGING: AtomicBool = AtomicBool::new(false);

/// Switches the subscriber; every callsite asks it again (its answer is cached per callsite).
fn switch_logging(on: bool) {
    LOGGING.store(on, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

/// A global subscriber, switched by [`LOGGING`]: a global one, because the operator's loop and
/// workers run on threads of their own. Installed once, in the last measurement, so that the
/// others run without one.
fn install_subscriber() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let switch = tracing_subscriber::filter::filter_fn(|metadata| {
            LOGGING.load(Ordering::Relaxed) && *metadata.level() <= tracing::Level::INFO
        });
        // No colors, as in a container, where logs are not a terminal.
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::io::sink)
            .with_filter(switch);
        let subscriber = tracing_subscriber::registry().with(layer);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!("memo-bench: a subscriber is installed already; measurement 8's span rows measure it");
        }
    });
}
