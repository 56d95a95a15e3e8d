use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(nmae: &str) {
    let _ = nmae;
}

fn main() {}
