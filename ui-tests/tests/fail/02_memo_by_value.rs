use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(memo: Memo) {
    let _ = memo;
}

fn main() {}
