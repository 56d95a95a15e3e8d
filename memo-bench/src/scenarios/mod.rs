//! The measurements of issue 5 (1 to 6), issue 9 (7), issue 12 (8) and issue 18 (9), in the order they are run
//! and printed.

mod dispatch;
mod injection;
mod memo_cost;
mod memory;
mod observability;
mod redis;
pub mod replica_process;
mod scaling;
mod shared;
mod splitter;

use crate::Config;
use crate::report::Report;
use tokio::runtime::Runtime;

/// One measurement: it runs its rounds and adds its rows, figures and targets to the report.
pub struct Scenario {
    pub name: &'static str,
    pub run: fn(&Runtime, &Config, &mut Report),
}

pub const ALL: [Scenario; 9] = [
    Scenario {
        name: "dispatch throughput",
        run: dispatch::run,
    },
    Scenario {
        name: "parallel scaling",
        run: scaling::run,
    },
    Scenario {
        name: "memo creation cost",
        run: memo_cost::run,
    },
    Scenario {
        name: "memory per resource",
        run: memory::run,
    },
    Scenario {
        name: "shared memory",
        run: shared::run,
    },
    Scenario {
        name: "handler injection cost",
        run: injection::run,
    },
    Scenario {
        name: "shared memory in Redis",
        run: redis::run,
    },
    Scenario {
        name: "observability",
        run: observability::run,
    },
    Scenario {
        name: "JSON framer",
        run: splitter::run,
    },
];
