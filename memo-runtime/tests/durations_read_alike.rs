//! `interval = "…"` (read by the macro) and `--shutdown-timeout …` (read by the runtime's copy of
//! the same parser) give the same duration for the same text.

use memo_runtime::__private::{Registration, Trigger};
use memo_runtime::clap::Parser;
use memo_runtime::cli::Args;
use memo_runtime::prelude::*;
use std::time::Duration;

#[handler(timer = "A", interval = "250ms")]
fn a() {}
#[handler(timer = "B", interval = "1.5s")]
fn b() {}
#[handler(timer = "C", interval = "1h30m")]
fn c() {}
#[handler(timer = "D", interval = "2m5s")]
fn d() {}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    memo: Args,
}

#[test]
fn durations_read_alike() {
    for (kind, text) in [("A", "250ms"), ("B", "1.5s"), ("C", "1h30m"), ("D", "2m5s")] {
        let interval = memo_runtime::__private::inventory::iter::<Registration>()
            .find_map(|registration| match registration.trigger {
                Trigger::Timer { resource, interval, .. } if resource == kind => Some(interval),
                _ => None,
            })
            .expect("registered");
        let flags = Flags::try_parse_from(["test", "--shutdown-timeout", text]).unwrap();
        assert_eq!(flags.memo.shutdown_timeout, Some(interval), "{text}");
        assert_ne!(interval, Duration::ZERO);
    }
}
