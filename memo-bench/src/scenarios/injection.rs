//! Measurement 6, handler injection cost: a handler asking for nothing against one asking for
//! `memo`, `name`, `namespace` and `logger`, through the same 1-worker operator over the same
//! events. The difference per event is what the injectables cost; what is not asked for is never
//! computed, so the plain handler's figure is the runtime's floor.

use crate::handlers::{self, INJECTED, PLAIN};
use crate::report::Report;
use crate::stats::{Samples, nanos_per, paired_differences};
use crate::{Config, workload};
use memo_runtime::Memo;
use serde_json::json;
use tokio::runtime::Runtime;

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    let mut plain = Samples::default();
    let mut injected = Samples::default();
    for _ in 0..config.injection_rounds {
        plain.push(nanos_per_event(runtime, config, PLAIN));
        injected.push(nanos_per_event(runtime, config, INJECTED));
    }
    let difference = paired_differences(&injected, &plain);

    report.section(format!(
        "6. Handler injection cost ({} events over {} resources, 1 worker)",
        crate::stats::grouped(config.injection_events as f64),
        crate::stats::grouped(config.injection_resources as f64)
    ));
    report.row(
        "handler with no parameters",
        format!("{:.0} ns/event", plain.median()),
        "baseline",
    );
    report.row(
        "handler with memo, name, namespace, logger",
        format!("{:.0} ns/event", injected.median()),
        format!("{:+.0} ns/event", difference.median()),
    );
    report.figures(
        "injection",
        json!({
            "events": config.injection_events,
            "resources": config.injection_resources,
            "plain_ns_per_event": plain.to_json(),
            "injected_ns_per_event": injected.to_json(),
            "difference_ns_per_event": difference.to_json(),
        }),
    );
}

fn nanos_per_event(runtime: &Runtime, config: &Config, kind: &str) -> f64 {
    handlers::expect(0);
    let events = workload::round_robin(kind, config.injection_events, config.injection_resources);
    let elapsed = runtime.block_on(workload::run_operator(events, 1, Memo::new()));
    assert_eq!(
        handlers::events_seen(),
        config.injection_events,
        "the operator missed events"
    );
    nanos_per(config.injection_events, elapsed)
}
