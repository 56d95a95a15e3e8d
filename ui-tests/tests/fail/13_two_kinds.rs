use memo_runtime::prelude::*;

#[handler(event = "KopfExample", timer = "KopfExample", interval = 10)]
fn pinged() {}

fn main() {}
