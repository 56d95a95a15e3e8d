use memo_runtime::prelude::*;

#[handler(create = "KopfExample", retires = 5)]
async fn provision() {}

fn main() {}
