#![deny(warnings)]

use memo_runtime::prelude::*;
use memo_runtime::shard::Fence;

#[handler(event = "KopfExample")]
fn seen(fence: Option<Fence>) {
    let _ = fence.map(|fence| (fence.bucket(), fence.token()));
}

#[handler(create = "KopfExample")]
async fn provision(shared: &Shared, fence: Option<memo_runtime::shard::Fence>) -> memo_runtime::Result<()> {
    let token = fence.map_or(0, |fence| fence.token());
    shared.update("token", |last: &mut u64| *last = (*last).max(token)).await
}

#[handler(timer = "KopfExample", interval = "10s")]
fn tick(_fence: Option<Fence>) {}

fn main() {}
