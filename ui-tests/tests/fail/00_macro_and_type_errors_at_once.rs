use memo_runtime::prelude::*;

// The macro's own errors and the type errors only the compiler can find come in the same build.
#[handler(event = "KopfExample")]
fn pinged(nmae: &str, name: u32, memo: Memo) -> String {
    let _ = (nmae, name, memo);
    String::new()
}

fn main() {}
