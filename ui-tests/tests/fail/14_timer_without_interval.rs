use memo_runtime::prelude::*;

#[handler(timer = "KopfExample")]
fn tick() {}

fn main() {}
