//! kopf's counter: every event of a `KopfExample` bumps a counter in that resource's memo, and a
//! timer reports and resets it.
//!
//! ```text
//! cargo run -p memo-examples --example counter -- --source examples/data/kopfexamples.json
//! ```

use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(memo: &mut Memo, logger: &Logger) {
    let n = memo.get::<u64>("counter").copied().unwrap_or(0);
    memo.insert("counter", n + 1);
    logger.info(format!("pinged: {} event(s) so far", n + 1));
}

#[handler(timer = "KopfExample", interval = 10)]
fn tick(memo: &mut Memo, logger: &Logger) {
    let n = memo.get::<u64>("counter").copied().unwrap_or(0);
    logger.info(format!("{n} events have been received in 10 seconds."));
    memo.insert("counter", 0u64);
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
