use memo_runtime::prelude::*;

use std::rc::Rc;

#[handler(event = "KopfExample")]
async fn pinged(shared: &Shared) -> memo_runtime::Result<()> {
    let local = Rc::new(1u64);
    shared.set("messages", *local).await?;
    drop(local);
    Ok(())
}

fn main() {}
