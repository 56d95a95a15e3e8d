use memo_runtime::prelude::*;

#[handler(create = "Kopf Example")]
fn created() {}

fn main() {}
