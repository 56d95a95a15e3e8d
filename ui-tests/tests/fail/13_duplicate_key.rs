use memo_runtime::prelude::*;

#[handler(event = "KopfExample", event = "Other")]
fn pinged() {}

fn main() {}
