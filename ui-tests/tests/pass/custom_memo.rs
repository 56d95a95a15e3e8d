//! A custom memo type, shared (`&M`) and exclusive (`&mut M`), sync and async.
#![deny(warnings)]

use memo_runtime::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A global memo: every clone shares one counter.
#[derive(Clone, Default)]
struct Context {
    hits: Arc<AtomicU64>,
    last: Option<String>,
}

#[handler(create = "KopfExample")]
fn created(memo: &Context, name: &str) {
    memo.hits.fetch_add(1, Ordering::Relaxed);
    let _ = name;
}

#[handler(delete = "KopfExample")]
fn deleted(memo: &mut Context, name: String) {
    memo.last = Some(name);
}

#[handler(update = "KopfExample")]
async fn updated(memo: &mut Context) {
    memo.hits.fetch_add(1, Ordering::Relaxed);
}

#[handler(startup)]
async fn started(memo: &Context) {
    let _ = memo.last.as_deref();
}

fn main() {
    let _ = Operator::new().memo(Context::default());
}
