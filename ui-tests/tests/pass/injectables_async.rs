//! Every accepted type of every injectable, in `async fn` handlers, and `shared`.
#![deny(warnings)]

use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
async fn memo_mut(memo: &mut Memo) {
    let n = memo.get::<u64>("counter").copied().unwrap_or(0);
    memo.insert("counter", n + 1);
}

#[handler(event = "KopfExample")]
async fn memo_ref(memo: &Memo, logger: &Logger) {
    logger.info(format_args!("{} keys", memo.len()));
}

#[handler(create = "KopfExample")]
async fn borrowed(name: &str, namespace: Option<&str>, uid: &str, body: &serde_json::Value, event: &Event) {
    let _ = (name, namespace, uid, body, event);
}

#[handler(update = "KopfExample")]
async fn owned(name: String, namespace: Option<String>, uid: String) {
    tokio::task::yield_now().await;
    drop((name, namespace, uid));
}

#[handler(event = "KopfExample")]
async fn increment(shared: &Shared) -> memo_runtime::Result<()> {
    shared.update("messages", |n: &mut u64| *n += 1).await?;
    Ok(())
}

#[handler(event = "KopfExample", component = "per-name")]
async fn per_name(shared: &Shared, name: &str) -> memo_runtime::Result<()> {
    let _guard = shared.lock("update-messages").await?;
    let mut counts: std::collections::HashMap<String, u64> = shared.get("messages").await?.unwrap_or_default();
    *counts.entry(name.to_owned()).or_default() += 1;
    shared.set("messages", &counts).await
}

#[handler(event = "KopfExample")]
#[allow(clippy::too_many_arguments)]
async fn everything(
    memo: &mut Memo,
    name: &str,
    namespace: Option<&str>,
    uid: &str,
    body: &serde_json::Value,
    event: &Event,
    logger: &Logger,
    shared: &Shared,
) -> memo_runtime::Result<()> {
    let count: Option<u64> = shared.get("messages").await?;
    memo.insert("count", count);
    logger.info(format_args!(
        "{name} {namespace:?} {uid} {} {:?}",
        body["kind"], event.r#type
    ));
    Ok(())
}

#[handler(timer = "KopfExample", interval = "250ms")]
async fn timer(memo: &mut Memo, shared: &Shared, name: String) -> memo_runtime::Result<()> {
    memo.insert("name", name);
    shared.remove("stale").await.map(drop)
}

#[handler(startup)]
async fn started(memo: &mut Memo, logger: &Logger, shared: &Shared) -> memo_runtime::Result<()> {
    memo.insert("keys", shared.keys().await?);
    logger.info("started");
    Ok(())
}

#[handler(cleanup)]
async fn stopped(shared: &Shared) -> memo_runtime::Result<()> {
    shared.contains("messages").await.map(drop)
}

fn main() {}
