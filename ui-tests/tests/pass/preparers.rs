//! `#[prepare_memory]`, bot-level and per component.
#![deny(warnings)]

use memo_runtime::prelude::*;

#[prepare_memory]
async fn prepare(shared: &Shared) -> memo_runtime::Result<()> {
    shared.set("messages", 0u64).await
}

#[prepare_memory(component = "per-name")]
async fn prepare_component(shared: &Shared) {
    let _ = shared.set("messages", 0u64).await;
}

#[prepare_memory(component = "other")]
async fn prepare_other(_shared: &Shared) {}

#[memo_runtime::prepare_memory]
async fn full_path(mut shared: &Shared) {
    let _ = &mut shared;
}

#[handler(event = "KopfExample", component = "per-name")]
async fn per_name(shared: &Shared) {
    let _ = shared;
}

#[handler(event = "KopfExample", component = "other")]
async fn other(shared: &Shared) {
    let _ = shared;
}

fn main() {}
