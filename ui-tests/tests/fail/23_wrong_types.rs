use memo_runtime::prelude::*;

#[handler(update = "KopfExample")]
fn changed(diff: Diff, labels: &std::collections::BTreeMap<String, String>, spec: serde_json::Value) {}

fn main() {}
