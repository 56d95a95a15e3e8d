//! Two components, each with its own preparer and its own isolated shared memory, plus botogram's
//! lock example: a per-name map updated under a named lock so concurrent workers lose nothing.
//!
//! ```text
//! cargo run -p memo-examples --example components -- --source examples/data/kopfexamples.json --workers 4
//! ```

use memo_runtime::prelude::*;
use std::collections::HashMap;

#[prepare_memory(component = "per-name")]
async fn prepare_per_name(shared: &Shared) -> memo_runtime::Result<()> {
    shared.set("messages", HashMap::<String, u64>::new()).await
}

#[handler(event = "KopfExample", component = "per-name")]
async fn per_name(shared: &Shared, name: &str) -> memo_runtime::Result<()> {
    let _guard = shared.lock("update-messages").await?;
    let mut counts: HashMap<String, u64> = shared.get("messages").await?.unwrap_or_default();
    *counts.entry(name.to_owned()).or_default() += 1;
    shared.set("messages", &counts).await
}

#[prepare_memory(component = "per-namespace")]
async fn prepare_per_namespace(shared: &Shared) -> memo_runtime::Result<()> {
    // The same key as the other component: components never see each other's keys.
    shared.set("messages", HashMap::<String, u64>::new()).await
}

#[handler(event = "KopfExample", component = "per-namespace")]
async fn per_namespace(shared: &Shared, namespace: Option<&str>) -> memo_runtime::Result<()> {
    let _guard = shared.lock("update-messages").await?;
    let mut counts: HashMap<String, u64> = shared.get("messages").await?.unwrap_or_default();
    *counts.entry(namespace.unwrap_or("-").to_owned()).or_default() += 1;
    shared.set("messages", &counts).await
}

#[handler(cleanup, component = "per-name")]
async fn report_per_name(shared: &Shared) -> memo_runtime::Result<()> {
    print_sorted("per name", shared.get("messages").await?.unwrap_or_default());
    Ok(())
}

#[handler(cleanup, component = "per-namespace")]
async fn report_per_namespace(shared: &Shared) -> memo_runtime::Result<()> {
    print_sorted("per namespace", shared.get("messages").await?.unwrap_or_default());
    Ok(())
}

fn print_sorted(title: &str, counts: HashMap<String, u64>) {
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    println!("messages {title}:");
    for (key, count) in counts {
        println!("  {key}: {count}");
    }
}

fn main() -> std::process::ExitCode {
    memo_runtime::run()
}
