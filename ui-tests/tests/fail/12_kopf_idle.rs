use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = 10, idle = 5)]
fn tick() {}

fn main() {}
