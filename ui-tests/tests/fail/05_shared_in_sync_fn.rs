use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn increment(shared: &Shared) {
    let _ = shared;
}

fn main() {}
