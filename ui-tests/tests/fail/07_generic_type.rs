use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged<M: Clone + Send + Sync + 'static>(memo: &mut M) {
    let _ = memo;
}

fn main() {}
