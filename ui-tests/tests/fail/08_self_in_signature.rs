use memo_runtime::prelude::*;

#[derive(Clone)]
struct Counter;

impl Counter {
    #[handler(event = "KopfExample")]
    fn pinged(memo: &mut Self) {
        let _ = memo;
    }
}

fn main() {}
