use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
struct Pinged;

fn main() {}
