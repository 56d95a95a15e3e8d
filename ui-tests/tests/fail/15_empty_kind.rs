use memo_runtime::prelude::*;

#[handler(event = "")]
fn pinged() {}

fn main() {}
