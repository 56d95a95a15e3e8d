use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(name: u32) {
    let _ = name;
}

fn main() {}
