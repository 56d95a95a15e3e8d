use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(old: &serde_json::Value, new: &serde_json::Value) {}

fn main() {}
