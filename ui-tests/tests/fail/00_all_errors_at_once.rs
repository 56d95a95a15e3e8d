use memo_runtime::prelude::*;

// Every mistake the macro can see is reported in one build, not one per build.
#[handler(evnt = "KopfExample", interval = 0, idle = 5)]
const fn pinged(nmae: &str, (a, b): (u8, u8), event: &Event, _event: &Event) -> String {
    let _ = (nmae, a, b, event);
    String::new()
}

fn main() {}
