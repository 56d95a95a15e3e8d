use memo_runtime::prelude::*;

#[handler(event = "KopfExample", id = "ping")]
fn pinged() {}

#[handler(timer = "KopfExample", interval = 10, id = "ping")]
fn tick() {}

fn main() {}
