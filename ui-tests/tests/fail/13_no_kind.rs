use memo_runtime::prelude::*;

#[handler]
fn pinged() {}

fn main() {}
