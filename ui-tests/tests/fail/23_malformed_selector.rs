use memo_runtime::prelude::*;

#[handler(event = "KopfExample", labels = "tier=web, env in (prod, staging")]
fn web() {}

#[handler(event = "KopfExample", annotations = "example.com/owner team")]
fn owned() {}

#[handler(event = "KopfExample", labels = "")]
fn empty() {}

fn main() {}
