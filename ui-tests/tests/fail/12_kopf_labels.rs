use memo_runtime::prelude::*;

#[handler(event = "KopfExample", labels = "app=web")]
fn pinged() {}

fn main() {}
