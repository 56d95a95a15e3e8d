use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(name: impl AsRef<str>) {
    let _ = name;
}

fn main() {}
