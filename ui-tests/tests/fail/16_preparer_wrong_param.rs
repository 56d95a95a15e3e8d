use memo_runtime::prelude::*;

#[prepare_memory]
async fn prepare(memo: &mut Memo) {
    let _ = memo;
}

fn main() {}
