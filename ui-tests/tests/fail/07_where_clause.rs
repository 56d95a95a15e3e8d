use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn pinged(name: &str)
where
    u8: Copy,
{
    let _ = name;
}

fn main() {}
