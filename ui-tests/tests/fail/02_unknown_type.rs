use memo_runtime::prelude::*;

// An unknown type is reported once, by the compiler, not once per use in the generated code.
#[handler(event = "KopfExample")]
fn pinged(memo: &mut Counter) {
    let _ = memo;
}

fn main() {}
