//! Every trigger form and option.
#![deny(warnings)]

use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn on_event() {}

#[handler(create = "kopfexample")]
fn on_create() {}

#[handler(update = "kopfexamples")]
fn on_update() {}

#[handler(delete = "kopfexamples.kopf.dev")]
fn on_delete() {}

#[handler(event = "deployments.apps")]
fn on_group() {}

#[handler(timer = "KopfExample", interval = 10)]
fn timer_int() {}

#[handler(timer = "KopfExample", interval = 0.5)]
fn timer_float() {}

#[handler(timer = "KopfExample", interval = "250ms")]
fn timer_ms() {}

#[handler(timer = "KopfExample", interval = "1m", initial_delay = "1h30m")]
fn timer_string_delay() {}

#[handler(timer = "KopfExample", interval = "10s", initial_delay = 2)]
fn timer_int_delay() {}

#[handler(timer = "KopfExample", initial_delay = 0.25, interval = 1.5)]
fn timer_float_delay_first() {}

#[handler(timer = "KopfExample", interval = 3, initial_delay = 0)]
fn timer_zero_delay() {}

#[handler(startup)]
fn on_startup() {}

#[handler(cleanup)]
fn on_cleanup() {}

#[handler(event = "KopfExample", id = "ping")]
fn with_id() {}

#[handler(timer = "KopfExample", interval = 1, id = "per-name tick/1")]
fn with_odd_id() {}

#[handler(event = "KopfExample", id = "per_name_tick_x2f_1")]
fn with_id_like_an_escape() {}

#[handler(startup, id = "boot")]
fn startup_with_id() {}

#[handler(event = "KopfExample", component = "per-name")]
async fn with_component(shared: &Shared) {
    let _ = shared;
}

#[handler(event = "KopfExample", component = "per-name", id = "both")]
async fn with_component_and_id(shared: &Shared) {
    let _ = shared;
}

#[handler(cleanup, component = "per-name")]
async fn cleanup_with_component(shared: &Shared) {
    let _ = shared;
}

#[handler(event = "KopfExample")]
fn trailing_comma() {}

#[memo_runtime::handler(event = "KopfExample")]
fn full_path() {}

#[memo_runtime::prelude::handler(event = "KopfExample")]
fn prelude_path() {}

fn main() {}
