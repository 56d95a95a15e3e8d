use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = -5)]
fn tick() {}

fn main() {}
