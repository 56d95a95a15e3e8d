//! Measurement 9 (issue 18): the watch-stream framer of the stream sources alone
//! (`source/framer.rs`: lines to documents, each parsed by serde_json), without reading or
//! dispatching, as throughput on three kinds of input. It first compared the framer with the
//! bracket scanner it replaced (BENCHMARKS.md keeps those figures).

use crate::Config;
use crate::report::Report;
use crate::stats::Samples;
use memo_runtime::source::splitters;
use serde_json::json;
use std::time::Instant;
use tokio::runtime::Runtime;

/// The example stream of the repository, as kubectl prints it: read when the bench runs (in the
/// repository), not included, so that the packaged crate holds no file from outside it.
const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/kopfexamples.json");

/// What the stream sources offer each read.
const READ: usize = 64 * 1024;

struct Input {
    name: String,
    bytes: Vec<u8>,
    chunk: usize,
    events: usize,
}

fn inputs(config: &Config) -> Vec<Input> {
    let repeats = if config.quick { 500 } else { 2_000 };
    let example = std::fs::read(BUNDLED).unwrap_or_else(|err| panic!("cannot read {BUNDLED}: {err}"));
    let bundled = example.repeat(repeats);
    let bundled_events = splitters::line_framer(&example, READ).0 * repeats;

    let small = if config.quick { 200_000 } else { 1_000_000 };
    let mut lines = Vec::new();
    for index in 0..small {
        let document = json!({"type": "MODIFIED", "object": {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
            "metadata": {"name": format!("ex{}", index % 10_000), "namespace": "default",
                         "uid": format!("u-{}", index % 10_000), "resourceVersion": index.to_string()},
            "spec": {"n": index}}});
        serde_json::to_writer(&mut lines, &document).expect("serializes");
        lines.push(b'\n');
    }

    // One ConfigMap of 1 MiB of data, pretty-printed as kubectl prints it.
    let data: serde_json::Map<String, serde_json::Value> = (0..1024)
        .map(|index| (format!("key-{index:04}"), json!("x".repeat(1000))))
        .collect();
    let large = json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "default", "uid": "u-big"}, "data": data}});
    let mut large = serde_json::to_vec_pretty(&large).expect("serializes");
    large.push(b'\n');

    vec![
        Input {
            name: format!("bundled stream x{repeats}, 64 KiB reads"),
            bytes: bundled,
            chunk: READ,
            events: bundled_events,
        },
        Input {
            name: format!("{small} one-line events, 64 KiB reads"),
            bytes: lines,
            chunk: READ,
            events: small,
        },
        Input {
            name: "one 1 MiB object, 4 KiB reads".to_owned(),
            bytes: large,
            chunk: 4096,
            events: 1,
        },
    ]
}

pub fn run(_: &Runtime, config: &Config, report: &mut Report) {
    report.section("JSON framer: lines to documents + serde_json (source/framer.rs)");
    let mut figures = serde_json::Map::new();
    for input in inputs(config) {
        let mut framer = Samples::default();
        for _ in 0..config.rounds {
            let start = Instant::now();
            let (events, skipped) = splitters::line_framer(&input.bytes, input.chunk);
            framer.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!((events, skipped), (input.events, 0), "{}", input.name);
        }
        let mib = input.bytes.len() as f64 / (1024.0 * 1024.0);
        let median = framer.median();
        report.row(
            &input.name,
            format!("{median:.2} ms"),
            format!("{:.0} MiB/s ({mib:.1} MiB)", mib / (median / 1e3)),
        );
        figures.insert(
            input.name.clone(),
            json!({"framer_ms": framer.to_json(), "bytes": input.bytes.len()}),
        );
    }
    report.figures("splitter", serde_json::Value::Object(figures));
}
