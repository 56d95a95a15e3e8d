use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = f64::NAN)]
fn tick() {}

fn main() {}
