//! Runnable examples of the memo framework; see the `[[example]]` targets in `Cargo.toml` and the
//! README. Each example file is also compiled into a test (`tests/`) that checks its handlers.
