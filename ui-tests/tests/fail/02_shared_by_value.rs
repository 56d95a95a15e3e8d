use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
async fn pinged(shared: Shared) {
    let _ = shared;
}

fn main() {}
