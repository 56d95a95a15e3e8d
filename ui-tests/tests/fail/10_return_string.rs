use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged() -> String {
    String::new()
}

fn main() {}
