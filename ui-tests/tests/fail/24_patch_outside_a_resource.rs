use memo_runtime::prelude::*;

#[handler(startup)]
fn started(patch: &mut Patch) {}

#[handler(cleanup)]
fn cleaned(recorder: &Recorder) {}

#[handler(create = "KopfExample")]
fn created(patch: &Patch, recorder: Recorder) {}

fn main() {}
