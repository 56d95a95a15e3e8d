use memo_runtime::prelude::*;

#[handler(id = "ping")]
fn pinged() {}

fn main() {}
