use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(memo: &mut Memo, _memo: &Memo) {
    let _ = memo;
}

fn main() {}
