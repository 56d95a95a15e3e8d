use memo_runtime::prelude::*;

#[handler(delete = "KopfExample", backoff = 0, timeout = "0ms")]
async fn release() {}

fn main() {}
