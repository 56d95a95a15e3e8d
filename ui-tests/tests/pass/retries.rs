//! `retries`, `backoff` and `timeout`: on create/update/delete handlers; `timeout` also on async
//! event handlers and timers.
#![deny(warnings)]

use memo_runtime::prelude::*;

#[handler(create = "KopfExample", retries = 5, backoff = "2s", timeout = "30s")]
async fn provision(name: &str) -> memo_runtime::Result<()> {
    let _ = name;
    Ok(())
}

// Sync, no timeout: fine.
#[handler(update = "KopfExample", retries = 0)]
fn resize() {}

#[handler(delete = "KopfExample", backoff = 0.5)]
fn release() {}

#[handler(delete = "kopfexamples.kopf.dev", timeout = 10, retries = 4294967295, id = "release-all")]
async fn release_all() {}

#[handler(update = "KopfExample", backoff = "1m", retries = 2)]
async fn rescale(memo: &mut Memo) {
    memo.insert("rescaled", true);
}

#[handler(event = "KopfExample", timeout = 5)]
async fn pinged() {}

#[handler(timer = "KopfExample", interval = 10, timeout = "1s")]
async fn tick() {}

#[handler(timer = "KopfExample", timeout = 0.25, interval = "250ms", initial_delay = 1)]
async fn tock() {}

fn main() {}
