use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = 0)]
fn tick() {}

fn main() {}
