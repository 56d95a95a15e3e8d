//! The memo benchmarks: each measurement runs the runtime and a hand-written baseline in the same
//! process, interleaved round by round, and reports medians and their ratios against the targets
//! of issue 5. See `BENCHMARKS.md` at the workspace root for results and how to read them.
//!
//! ```text
//! cargo run --release -p memo-bench                    # the full run, prints the table
//! cargo run --release -p memo-bench -- --quick         # smaller and fewer rounds (< 60 s)
//! cargo run --release -p memo-bench -- --json out.json # also writes figures and targets
//! cargo run --release -p memo-bench -- --only 1,2      # some measurements only
//! ```

mod alloc;
mod handlers;
mod report;
mod scenarios;
mod stats;
mod workload;

use report::Report;
use std::path::PathBuf;
use std::process::ExitCode;

/// Counts live bytes for the memory-per-resource measurement (off unless that one is running).
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub quick: bool,
    /// Rounds of every timed figure; each figure is the median of its rounds.
    pub rounds: usize,
    /// Scenarios 1 and 2 (and 6): events are spread round-robin over `resources`.
    pub dispatch_events: usize,
    pub resources: usize,
    /// Scenario 2: events, each burning about 5 µs.
    pub burn_events: usize,
    /// Scenario 3: direct clone-and-insert repetitions per round, and events through the operator.
    pub memo_clones: usize,
    pub fresh_events: usize,
    /// Scenario 4: resources held at once.
    pub memory_resources: usize,
    /// Scenario 5: operations per thread for `update`/`get`/`set`, and for the locked cycle.
    pub shared_ops: usize,
    pub shared_lock_ops: usize,
    /// Scenario 7: operations per figure (split over the tasks) for `get`/`set`/`update`, and for
    /// the locked cycle.
    pub redis_ops: usize,
    pub redis_lock_ops: usize,
    /// Scenario 6: events per run over `injection_resources`, and rounds. The difference it
    /// measures is a few percent of the per-event cost, so it takes many short paired rounds
    /// whose events still fit in the last-level cache, rather than a few long ones.
    pub injection_events: usize,
    pub injection_resources: usize,
    pub injection_rounds: usize,
}

impl Config {
    fn new(quick: bool) -> Self {
        Config {
            quick,
            rounds: if quick { 3 } else { 5 },
            dispatch_events: if quick { 200_000 } else { 1_000_000 },
            resources: 10_000,
            burn_events: if quick { 20_000 } else { 100_000 },
            memo_clones: if quick { 20_000 } else { 100_000 },
            fresh_events: if quick { 20_000 } else { 100_000 },
            memory_resources: 100_000,
            shared_ops: if quick { 200_000 } else { 1_000_000 },
            shared_lock_ops: if quick { 50_000 } else { 200_000 },
            redis_ops: if quick { 8_000 } else { 32_000 },
            redis_lock_ops: if quick { 2_000 } else { 8_000 },
            injection_events: 20_000,
            injection_resources: 1_000,
            injection_rounds: if quick { 31 } else { 101 },
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "quick": self.quick,
            "rounds": self.rounds,
            "dispatch_events": self.dispatch_events,
            "resources": self.resources,
            "burn_events": self.burn_events,
            "memo_clones": self.memo_clones,
            "fresh_events": self.fresh_events,
            "memory_resources": self.memory_resources,
            "shared_ops": self.shared_ops,
            "shared_lock_ops": self.shared_lock_ops,
            "redis_ops": self.redis_ops,
            "redis_lock_ops": self.redis_lock_ops,
            "injection_events": self.injection_events,
            "injection_resources": self.injection_resources,
            "injection_rounds": self.injection_rounds,
        })
    }
}

/// The command line.
struct Args {
    quick: bool,
    json: Option<PathBuf>,
    only: Option<Vec<usize>>,
}

const USAGE: &str = "usage: memo-bench [--quick] [--json FILE] [--only N[,N...]]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        json: None,
        only: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--quick" => args.quick = true,
            "--json" => args.json = Some(words.next().ok_or("--json needs a file name")?.into()),
            "--only" => {
                let list = words.next().ok_or("--only needs measurement numbers, such as 1,3")?;
                let numbers = list
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|_| format!("not a measurement number: {n}")))
                    .collect::<Result<_, _>>()?;
                args.only = Some(numbers);
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(args)
}

/// This machine, for the record: cores and CPU model.
fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_default();
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    serde_json::json!({ "cpus": cpus, "cpu_model": model, "unix_time": unix_time, "allocator": allocator() })
}

/// The allocator the run measures, both sides alike: the system's (glibc's `malloc` on Linux),
/// or one preloaded (`LD_PRELOAD=…/libjemalloc.so.2`). It decides how freeing events made on one
/// thread scales over several (BENCHMARKS.md, "Again, stop 22").
fn allocator() -> String {
    match std::env::var("LD_PRELOAD") {
        Ok(preloaded) if !preloaded.trim().is_empty() => format!("preloaded: {}", preloaded.trim()),
        _ => "the system allocator (glibc malloc on Linux)".to_owned(),
    }
}

fn main() -> ExitCode {
    // The bench started again as one replica process of measurement 4.
    let words: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, count, resources] = words.as_slice()
        && flag == "--replica-process"
        && let (Ok(count), Ok(resources)) = (count.parse(), resources.parse())
    {
        scenarios::replica_process::child_main(count, resources);
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let config = Config::new(args.quick);
    // Two worker threads, as on the 2-core machine the targets are set for.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    let mut report = Report::default();
    println!("allocator: {}", allocator());
    for (number, scenario) in scenarios::ALL.iter().enumerate() {
        let number = number + 1;
        if args.only.as_ref().is_some_and(|only| !only.contains(&number)) {
            continue;
        }
        eprintln!("measuring {number}/{}: {}", scenarios::ALL.len(), scenario.name);
        (scenario.run)(&runtime, &config, &mut report);
    }
    println!("{}", report.table());
    if let Some(path) = args.json {
        let settings = serde_json::json!({ "config": config.to_json(), "machine": machine() });
        let json = serde_json::to_string_pretty(&report.to_json(settings)).expect("figures serialize");
        if let Err(err) = std::fs::write(&path, json + "\n") {
            eprintln!("cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("figures written to {}", path.display());
    }
    ExitCode::SUCCESS
}
