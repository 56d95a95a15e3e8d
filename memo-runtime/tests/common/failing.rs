//! Handlers that fail in each way a handler can: an `Err`, a panic; and one that still runs.
//! Shared by the tests of what failures do and of what they log.

use super::common::push;
use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn fails(name: &str) -> Result<(), String> {
    if name == "bad" {
        return Err(format!("{name} is bad"));
    }
    Ok(())
}

#[handler(event = "KopfExample")]
async fn panics(name: &str) {
    if name == "boom" {
        panic!("handler exploded on {name}");
    }
}

#[handler(event = "KopfExample")]
fn still_runs(memo: &Memo, name: &str) -> memo_runtime::Result<()> {
    push(memo, name);
    Ok(())
}
