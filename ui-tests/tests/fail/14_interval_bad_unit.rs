use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = "5 parsecs")]
fn tick() {}

fn main() {}
