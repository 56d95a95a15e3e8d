use memo_runtime::prelude::*;

#[handler(create = "KopfExample", optional)]
fn created() {}

#[handler(delete = "KopfExample", optional = true)]
fn deleted() {}

#[handler(event = "KopfExample")]
fn seen(retry: u32) {}

#[handler(resume = "KopfExample")]
fn resumed(retry: i64) {}

fn main() {}
