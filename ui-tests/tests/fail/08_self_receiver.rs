use memo_runtime::prelude::*;

struct Counter;

impl Counter {
    #[handler(event = "KopfExample")]
    fn pinged(&self, memo: &mut Memo) {
        let _ = memo;
    }
}

fn main() {}
