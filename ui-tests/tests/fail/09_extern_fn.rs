use memo_runtime::prelude::*;

#[handler(startup)]
extern "C" fn started() {}

fn main() {}
