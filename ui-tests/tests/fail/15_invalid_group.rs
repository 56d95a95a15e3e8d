use memo_runtime::prelude::*;

#[handler(delete = "kopfexamples.Kopf.Dev")]
fn deleted() {}

fn main() {}
