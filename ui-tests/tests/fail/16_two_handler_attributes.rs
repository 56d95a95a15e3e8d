use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
#[handler(timer = "KopfExample", interval = 10)]
fn pinged() {}

fn main() {}
