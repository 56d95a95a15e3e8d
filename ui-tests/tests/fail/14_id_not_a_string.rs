use memo_runtime::prelude::*;

#[handler(event = "KopfExample", id = ping)]
fn pinged() {}

fn main() {}
