use memo_runtime::prelude::*;

use std::cell::Cell;

// Resources are handled on several threads: a memo type must be `Send + Sync`.
#[derive(Clone)]
struct Context {
    hits: Cell<u64>,
}

#[handler(event = "KopfExample")]
fn pinged(memo: &Context) {
    memo.hits.set(memo.hits.get() + 1);
}

fn main() {}
