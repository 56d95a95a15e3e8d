//! botogram's message counter on shared memory: a preparer sets `messages = 0` the first time the
//! memory is needed; every event increments it, from any worker; a timer and cleanup report it.
//!
//! ```text
//! cargo run -p memo-examples --example message_counter -- --source examples/data/kopfexamples.json --workers 4
//! ```
//!
//! Three replicas splitting one stream, sharing the counter in Redis (feature `redis`):
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! for i in 0 1 2; do
//!   cargo run -p memo-examples --features redis --example message_counter -- \
//!     --source examples/data/kopfexamples.json --redis redis://127.0.0.1:6379/ --shard $i/3 &
//! done; wait
//! redis-cli GET memo:message_counter:bot:value:messages
//! ```

use memo_runtime::prelude::*;

#[prepare_memory]
async fn prepare(shared: &Shared) -> memo_runtime::Result<()> {
    // Once per memory: with `--redis`, once for every replica of the bot together.
    println!("preparing the shared memory");
    shared.set("messages", 0u64).await
}

#[handler(event = "KopfExample")]
async fn increment(shared: &Shared) -> memo_runtime::Result<()> {
    shared.update("messages", |n: &mut u64| *n += 1).await?;
    Ok(())
}

#[handler(timer = "KopfExample", interval = "30s", initial_delay = "30s")]
async fn report(shared: &Shared, logger: &Logger) -> memo_runtime::Result<()> {
    let messages: u64 = shared.get("messages").await?.unwrap_or(0);
    logger.info(format!("{messages} messages so far"));
    Ok(())
}

#[handler(cleanup)]
async fn total(shared: &Shared) -> memo_runtime::Result<()> {
    let messages: u64 = shared.get("messages").await?.unwrap_or(0);
    println!("{messages} messages received in total");
    Ok(())
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
