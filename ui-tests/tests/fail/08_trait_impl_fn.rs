use memo_runtime::prelude::*;

struct Counter;

trait Handlers {
    fn pinged(memo: &mut Memo);
}

impl Handlers for Counter {
    #[handler(event = "KopfExample")]
    fn pinged(memo: &mut Memo) {
        let _ = memo;
    }
}

fn main() {}
