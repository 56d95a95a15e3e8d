use memo_runtime::prelude::*;

#[handler(startup)]
fn started(fence: Option<Fence>) {}

#[handler(event = "KopfExample")]
fn seen(fence: u64) {}

fn main() {}
