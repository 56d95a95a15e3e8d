//! Compile-time diagnostics of `#[handler]` and `#[prepare_memory]`, checked with trybuild:
//! `tests/fail/*.rs` must fail to compile with exactly the errors in their `.stderr` files, and
//! `tests/pass/*.rs` must compile. Run `cargo test -p memo-ui-tests`; after a deliberate change of
//! wording, regenerate with `TRYBUILD=overwrite cargo test -p memo-ui-tests` and read the diff.
