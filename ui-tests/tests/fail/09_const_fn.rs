use memo_runtime::prelude::*;

#[handler(startup)]
const fn started() {}

fn main() {}
