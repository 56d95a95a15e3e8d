use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = 10, backoff = "2s")]
fn tick() {}

fn main() {}
