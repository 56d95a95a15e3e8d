use memo_runtime::prelude::*;

use std::rc::Rc;

// Resources are handled on several threads: a memo type must be `Send + Sync`.
#[derive(Clone)]
struct Context {
    hits: Rc<u64>,
}

#[handler(event = "KopfExample")]
fn pinged(memo: &mut Context) {
    memo.hits = Rc::new(*memo.hits + 1);
}

fn main() {}
