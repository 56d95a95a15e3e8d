use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged() -> Result<u64, String> {
    Ok(1)
}

fn main() {}
