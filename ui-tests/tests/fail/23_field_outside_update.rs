use memo_runtime::prelude::*;

#[handler(event = "KopfExample", field = "spec.size")]
fn pinged() {}

#[handler(timer = "KopfExample", interval = 10, field = "spec.size")]
fn tick() {}

#[handler(startup, labels = "tier=web")]
fn start() {}

fn main() {}
