use memo_runtime::prelude::*;

#[handler(startup, initial_delay = 1)]
fn started() {}

fn main() {}
