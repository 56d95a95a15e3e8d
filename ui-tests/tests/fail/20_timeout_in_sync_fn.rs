use memo_runtime::prelude::*;

#[handler(create = "KopfExample", retries = 5, timeout = "30s")]
fn provision(name: &str) -> memo_runtime::Result<()> {
    let _ = name;
    Ok(())
}

fn main() {}
