use memo_runtime::prelude::*;

#[handler(event = 42)]
fn pinged() {}

fn main() {}
