//! Handlers return `()` or `Result<(), E>` with any `E: Display`.
#![deny(warnings)]

use memo_runtime::prelude::*;
use std::fmt;

#[handler(event = "KopfExample")]
fn unit() {}

#[handler(event = "KopfExample")]
#[allow(clippy::unused_unit)]
fn explicit_unit() -> () {}

#[handler(event = "KopfExample")]
fn runtime_result() -> memo_runtime::Result<()> {
    Ok(())
}

#[handler(event = "KopfExample")]
fn prelude_result() -> Result<()> {
    Ok(())
}

#[handler(event = "KopfExample")]
fn string_error() -> std::result::Result<(), String> {
    Err("failed".to_owned())
}

#[handler(event = "KopfExample")]
fn static_str_error() -> std::result::Result<(), &'static str> {
    Err("failed")
}

#[handler(event = "KopfExample")]
fn io_error() -> std::result::Result<(), std::io::Error> {
    std::fs::metadata("/").map(drop)
}

#[handler(event = "KopfExample")]
fn boxed_error() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

struct Oops(u8);

impl fmt::Display for Oops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oops #{}", self.0)
    }
}

#[handler(event = "KopfExample")]
fn custom_error(memo: &Memo) -> std::result::Result<(), Oops> {
    if memo.is_empty() {
        Err(Oops(1))
    } else {
        Ok(())
    }
}

#[handler(event = "KopfExample")]
async fn async_unit() {}

#[handler(event = "KopfExample")]
async fn async_custom_error() -> std::result::Result<(), Oops> {
    Err(Oops(2))
}

#[handler(event = "KopfExample")]
async fn async_io_error() -> std::result::Result<(), std::io::Error> {
    Ok(())
}

#[prepare_memory]
async fn preparer_with_error(shared: &Shared) -> std::result::Result<(), Oops> {
    shared.set("x", 1u8).await.map_err(|_| Oops(3))
}

fn main() {}
