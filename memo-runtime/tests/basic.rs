use memo_runtime::prelude::*;
use std::sync::{Arc, Mutex};

#[handler(event = "KopfExample")]
fn pinged(memo: &mut Memo) {
    let n = memo.get::<u64>("counter").copied().unwrap_or(0);
    memo.insert("counter", n + 1);
}

#[handler(event = "KopfExample")]
async fn record(memo: &Memo, name: &str, namespace: Option<&str>, logger: &Logger) -> memo_runtime::Result<()> {
    logger.info(format!("seen {name}"));
    let log = memo.get::<Arc<Mutex<Vec<String>>>>("log").unwrap();
    log.lock().unwrap().push(format!(
        "{}/{name}={}",
        namespace.unwrap_or("-"),
        memo.get::<u64>("counter").unwrap()
    ));
    Ok(())
}

#[tokio::test]
async fn counts_per_resource() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut memo = Memo::new();
    memo.insert("log", log.clone());
    let (events, source) = memo_runtime::source::channel(16);
    let running = tokio::spawn(
        Operator::new()
            .memo(memo)
            .workers(1)
            .handle_signals(false)
            .source(source)
            .run(),
    );
    for (name, uid) in [("a", "u-a"), ("b", "u-b"), ("a", "u-a")] {
        events
            .send(Event::added(serde_json::json!({
                "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
                "metadata": {"name": name, "namespace": "default", "uid": uid}
            })))
            .await
            .unwrap();
    }
    drop(events);
    running.await.unwrap().unwrap();
    assert_eq!(*log.lock().unwrap(), ["default/a=1", "default/b=1", "default/a=2"]);
}
