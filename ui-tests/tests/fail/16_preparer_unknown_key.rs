use memo_runtime::prelude::*;

#[prepare_memory(componnet = "per-name")]
async fn prepare(shared: &Shared) {
    let _ = shared;
}

fn main() {}
