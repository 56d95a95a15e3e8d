use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged((a, b): (u8, u8)) {
    let _ = (a, b);
}

fn main() {}
