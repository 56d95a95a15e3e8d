use memo_runtime::prelude::*;

#[handler(startup)]
fn started(name: &str) {
    let _ = name;
}

fn main() {}
