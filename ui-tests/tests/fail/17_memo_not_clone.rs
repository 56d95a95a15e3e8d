use memo_runtime::prelude::*;

// Each resource gets a clone of the operator's memo: a memo type must be `Clone`.
struct Context {
    hits: u64,
}

#[handler(event = "KopfExample")]
fn pinged(memo: &mut Context) {
    memo.hits += 1;
}

fn main() {}
