use memo_runtime::prelude::*;

#[handler(timer = "KopfExample", interval = 10)]
fn tick(event: &Event) {
    let _ = event;
}

fn main() {}
