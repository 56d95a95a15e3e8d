use memo_runtime::prelude::*;

#[handler(event = "KopfExample", retries = 3)]
fn pinged() {}

fn main() {}
