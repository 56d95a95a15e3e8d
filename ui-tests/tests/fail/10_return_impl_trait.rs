use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged() -> impl std::fmt::Display {
    "done"
}

fn main() {}
