use memo_runtime::prelude::*;

#[handler(update = "KopfExample", retries = "3")]
async fn resize() {}

fn main() {}
