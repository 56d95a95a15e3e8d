use memo_runtime::prelude::*;

#[handler(startup, retries = 3, timeout = "10s")]
async fn start() {}

#[handler(cleanup, backoff = 1)]
fn stop() {}

fn main() {}
