use memo_runtime::prelude::*;

#[handler(startup)]
unsafe extern "C" fn started(_memo: &Memo, _args: ...) {}

fn main() {}
