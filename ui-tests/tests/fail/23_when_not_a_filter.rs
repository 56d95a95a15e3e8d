use memo_runtime::prelude::*;

fn by_name(name: &str) -> bool {
    name.starts_with("web")
}

const READY: bool = true;

#[handler(event = "KopfExample", when = by_name)]
fn pinged() {}

#[handler(event = "KopfExample", when = READY)]
fn ready() {}

#[handler(event = "KopfExample", when = "by_name")]
fn quoted() {}

fn main() {}
