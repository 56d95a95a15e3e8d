use memo_runtime::prelude::*;

#[prepare_memory]
async fn prepare(shared: &Shared, logger: &Logger) {
    let _ = (shared, logger);
}

fn main() {}
