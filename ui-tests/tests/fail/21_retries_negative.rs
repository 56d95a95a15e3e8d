use memo_runtime::prelude::*;

#[handler(create = "KopfExample", retries = -1)]
async fn provision() {}

fn main() {}
