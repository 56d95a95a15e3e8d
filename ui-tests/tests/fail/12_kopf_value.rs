use memo_runtime::prelude::*;

#[handler(update = "KopfExample", field = "spec.size", value = 3)]
fn resized() {}

fn main() {}
