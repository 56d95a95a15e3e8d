use memo_runtime::prelude::*;

#[prepare_memory]
fn prepare(shared: &Shared) {
    let _ = shared;
}

fn main() {}
