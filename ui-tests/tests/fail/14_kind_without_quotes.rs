use memo_runtime::prelude::*;

#[handler(event = KopfExample)]
fn pinged() {}

fn main() {}
