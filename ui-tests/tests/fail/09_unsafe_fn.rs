use memo_runtime::prelude::*;

#[handler(startup)]
unsafe fn started() {}

fn main() {}
