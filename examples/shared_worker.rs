//! One process of a bot whose shared memory is in Redis: run several at once and they share it.
//! The cross-process tests spawn it; it also shows the store API outside handlers.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! export MEMO_REDIS_URL=redis://127.0.0.1:6379/ MEMO_BOT=demo
//! cargo run -p memo-examples --features redis --example shared_worker -- update 1000 &
//! cargo run -p memo-examples --features redis --example shared_worker -- update 1000
//! redis-cli GET memo:demo:bot:value:n      # 2000
//! ```
//!
//! Modes:
//! - `update N`: N `update`s of key `n`.
//! - `locked N`: N cycles of lock `counter` + get + set of key `locked`.
//! - `hold VALUE`: takes lock `deploy`, prints `fencing_token=T`, waits for a line on stdin (or its
//!   end), then writes VALUE to key `config` fenced by the lock and prints `written` or
//!   `refused: ...`.
//!
//! Environment: `MEMO_REDIS_URL` (default `redis://127.0.0.1:6379/`), `MEMO_BOT` (default
//! `shared-worker`), `MEMO_LEASE_MS` (lease length; default the store's).

use memo_runtime::prelude::*;
use memo_runtime::store::RedisStore;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match work().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shared_worker: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn work() -> memo_runtime::Result<()> {
    let url = std::env::var("MEMO_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let bot = std::env::var("MEMO_BOT").unwrap_or_else(|_| "shared-worker".to_owned());
    let mut store = RedisStore::connect(&url).await?;
    if let Some(lease) = std::env::var("MEMO_LEASE_MS").ok().and_then(|ms| ms.parse().ok()) {
        store = store.with_lease(Duration::from_millis(lease));
    }
    let shared = Operator::new().name(bot).store(store).shared();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = || -> memo_runtime::Result<usize> {
        args.get(1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::custom("give a count: update N | locked N"))
    };
    match args.first().map(String::as_str) {
        Some("update") => {
            for _ in 0..count()? {
                shared.update("n", |n: &mut u64| *n += 1).await?;
            }
        }
        Some("locked") => {
            for _ in 0..count()? {
                let guard = shared.lock("counter").await?;
                let n: u64 = shared.get("locked").await?.unwrap_or(0);
                shared.set("locked", n + 1).await?;
                // Waits for the release: the last one must reach Redis before this process exits.
                guard.unlock().await?;
            }
        }
        Some("hold") => {
            let value = args.get(1).cloned().unwrap_or_default();
            let guard = shared.lock("deploy").await?;
            println!("fencing_token={}", guard.fencing_token());
            std::io::stdout().flush()?;
            // Blocking stdin read on a thread of its own, so the lease keeps being renewed.
            tokio::task::spawn_blocking(|| std::io::stdin().lock().read_line(&mut String::new()))
                .await
                .map_err(Error::custom)??;
            match shared.set_fenced(&guard, "config", &value).await {
                Ok(()) => println!("written"),
                Err(err) => println!("refused: {err}"),
            }
            guard.unlock().await?;
        }
        _ => return Err(Error::custom("usage: shared_worker update N | locked N | hold VALUE")),
    }
    Ok(())
}
