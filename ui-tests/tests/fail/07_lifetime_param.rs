use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged<'a>(name: &'a str) {
    let _ = name;
}

fn main() {}
