use memo_runtime::prelude::*;

#[handler(event = "KopfExample", when = is_ready)]
fn pinged() {}

fn main() {}
