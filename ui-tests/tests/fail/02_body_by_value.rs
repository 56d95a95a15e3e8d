use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(body: serde_json::Value) {
    let _ = body;
}

fn main() {}
