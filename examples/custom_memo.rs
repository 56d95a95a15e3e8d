//! A custom memo type embedded in your own tokio `main`: `Templates` is `Clone`, but every clone
//! shares one inner `Arc`, so all resources see one global memo (kopf: a memo class whose copy
//! returns itself).
//!
//! ```text
//! cargo run -p memo-examples --example custom_memo -- examples/data/kopfexamples.json
//! ```

use memo_runtime::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Message templates and a count of live resources, one copy for the whole operator.
#[derive(Clone)]
struct Templates(Arc<Inner>);

struct Inner {
    created: String,
    deleted: String,
    alive: AtomicUsize,
}

impl Templates {
    fn render(template: &str, name: &str, alive: usize) -> String {
        template.replace("{name}", name).replace("{alive}", &alive.to_string())
    }
}

#[handler(create = "KopfExample")]
fn created(memo: &Templates, name: &str) {
    let alive = memo.0.alive.fetch_add(1, Ordering::SeqCst) + 1;
    println!("{}", Templates::render(&memo.0.created, name, alive));
}

#[handler(delete = "KopfExample")]
fn deleted(memo: &Templates, name: &str) {
    let alive = memo.0.alive.fetch_sub(1, Ordering::SeqCst) - 1;
    println!("{}", Templates::render(&memo.0.deleted, name, alive));
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/data/kopfexamples.json".to_owned());
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|err| format!("cannot open {path}: {err}"))?;
    let templates = Templates(Arc::new(Inner {
        created: "hello, {name}! ({alive} alive)".to_owned(),
        deleted: "goodbye, {name}. ({alive} alive)".to_owned(),
        alive: AtomicUsize::new(0),
    }));
    Operator::new()
        .memo(templates.clone())
        .workers(2)
        .source(memo_runtime::source::json_stream(file))
        .run()
        .await?;
    println!(
        "{} resource(s) still alive at the end of the stream",
        templates.0.alive.load(Ordering::SeqCst)
    );
    Ok(())
}
