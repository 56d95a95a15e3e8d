//! The expansion is warning-free, also under strict lints a user may enable. (trybuild runs
//! rustc, not clippy: `clippy::all` is here for `cargo clippy` runs on a copy of this file.)
#![deny(warnings)]
#![forbid(unsafe_code)]
#![deny(clippy::all)]
#![deny(
    unused,
    nonstandard_style,
    rust_2018_idioms,
    future_incompatible,
    elided_lifetimes_in_paths,
    explicit_outlives_requirements,
    let_underscore_drop,
    macro_use_extern_crate,
    meta_variable_misuse,
    missing_debug_implementations,
    non_ascii_idents,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    unit_bindings,
    unreachable_pub,
    unused_extern_crates,
    unused_import_braces,
    unused_lifetimes,
    unused_qualifications,
    unused_results,
    variant_size_differences
)]

use memo_runtime::prelude::*;

#[handler(event = "KopfExample", id = "strict")]
fn pinged(memo: &mut Memo, name: &str, namespace: Option<&str>, body: &serde_json::Value, event: &Event) {
    memo.insert(
        "last",
        format!("{name} {namespace:?} {} {:?}", body["kind"], event.r#type),
    );
}

#[handler(timer = "KopfExample", interval = 10, initial_delay = "1s")]
fn tick(memo: &mut Memo, logger: &Logger) -> Result<()> {
    logger.info(format_args!("{} keys", memo.len()));
    Ok(())
}

#[handler(startup)]
async fn started(memo: &mut Memo, shared: &Shared) -> Result<()> {
    memo.insert("started", true);
    shared.set("messages", 0u64).await
}

#[handler(cleanup)]
async fn stopped(memo: &Memo) {
    let _ = memo;
}

#[prepare_memory]
async fn prepare(shared: &Shared) -> Result<()> {
    shared.set("messages", 0u64).await
}

#[prepare_memory(component = "strict")]
async fn prepare_component(_shared: &Shared) {}

#[handler(event = "KopfExample", component = "strict")]
async fn with_component(shared: &Shared, name: String) -> std::result::Result<(), std::io::Error> {
    drop((shared, name));
    Ok(())
}

fn main() {}
