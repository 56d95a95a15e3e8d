use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(namespace: &str) {
    let _ = namespace;
}

fn main() {}
