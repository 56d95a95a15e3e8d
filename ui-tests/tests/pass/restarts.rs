#![deny(warnings)]

use memo_runtime::prelude::*;

#[handler(create = "KopfExample")]
fn provision(name: &str, retry: u32) {
    let _ = (name, retry);
}

#[handler(update = "KopfExample")]
async fn reconfigure(diff: &Diff, retry: u32) {
    let _ = (diff.len(), retry);
}

#[handler(delete = "KopfExample")]
fn deprovision(_name: &str) {}

#[handler(delete = "ConfigMap", optional)]
fn forget(_name: &str) {}

#[handler(resume = "KopfExample", retries = 3, backoff = "2s")]
fn reattach(name: &str, memo: &mut Memo, patch: &mut Patch, retry: u32) {
    memo.insert("attached", name.to_owned());
    patch.set("/status/attached", retry);
}

fn main() {}
