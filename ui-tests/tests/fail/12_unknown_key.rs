use memo_runtime::prelude::*;

#[handler(evnt = "KopfExample")]
fn pinged() {}

fn main() {}
