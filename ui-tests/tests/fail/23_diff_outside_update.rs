use memo_runtime::prelude::*;

#[handler(create = "KopfExample")]
fn created(diff: &Diff) {}

fn main() {}
