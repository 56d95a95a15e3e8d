use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(_: &str) {}

fn main() {}
