use memo_runtime::prelude::*;

struct Oops;

#[handler(event = "KopfExample")]
fn pinged() -> Result<(), Oops> {
    Ok(())
}

fn main() {}
