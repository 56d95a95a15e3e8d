use memo_runtime::prelude::*;

#[prepare_memory]
async fn prepare() {}

fn main() {}
