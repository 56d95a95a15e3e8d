//! Every accepted type of every injectable, in plain `fn` handlers.
#![deny(warnings)]

use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn memo_mut(memo: &mut Memo) {
    let n = memo.get::<u64>("counter").copied().unwrap_or(0);
    memo.insert("counter", n + 1);
}

#[handler(event = "KopfExample")]
fn memo_ref(memo: &Memo) {
    let _ = memo.get::<u64>("counter");
}

#[handler(event = "KopfExample")]
fn borrowed(name: &str, namespace: Option<&str>, uid: &str) {
    let _ = (name.len(), namespace.map(str::len), uid.len());
}

#[handler(event = "KopfExample")]
fn owned(name: String, namespace: Option<String>, uid: String) {
    drop((name, namespace, uid));
}

#[handler(event = "KopfExample")]
fn body_event_logger(body: &serde_json::Value, event: &Event, logger: &Logger) {
    logger.info(format_args!("{:?} {}", event.r#type, body["kind"]));
}

#[handler(event = "KopfExample")]
fn everything(
    memo: &mut Memo,
    name: &str,
    namespace: Option<&str>,
    uid: String,
    body: &serde_json::Value,
    event: &Event,
    logger: &Logger,
) {
    memo.insert(
        "last",
        format!("{name} {namespace:?} {uid} {} {:?}", body["kind"], event.r#type),
    );
    logger.debug("done");
}

#[handler(event = "KopfExample")]
fn nothing() {}

#[handler(timer = "KopfExample", interval = 10)]
fn timer_injectables(
    memo: &mut Memo,
    name: &str,
    namespace: Option<&str>,
    uid: &str,
    body: &serde_json::Value,
    logger: &Logger,
) {
    memo.insert(
        "seen",
        (
            name.to_owned(),
            namespace.map(str::to_owned),
            uid.to_owned(),
            body.clone(),
        ),
    );
    logger.warn("tick");
}

#[handler(startup)]
fn startup_injectables(memo: &mut Memo, logger: &Logger) {
    memo.insert("started", true);
    logger.info("started");
}

#[handler(cleanup)]
fn cleanup_injectables(memo: &Memo, logger: &Logger) {
    logger.error(format_args!("{} keys", memo.len()));
}

fn main() {}
