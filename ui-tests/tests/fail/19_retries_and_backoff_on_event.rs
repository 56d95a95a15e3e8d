use memo_runtime::prelude::*;

// Both misplaced keys are reported in one build.
#[handler(event = "KopfExample", retries = 3, backoff = "2s")]
async fn pinged() {}

fn main() {}
