use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = true)]
fn tick() {}

fn main() {}
