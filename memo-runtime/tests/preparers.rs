//! Preparers run exactly once per memory, lazily, before the first handler that needs it — even
//! when many workers need it at the same instant. Components are isolated from each other and
//! from the bot, keys and lock names alike.

mod common;

use common::*;
use memo_runtime::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static BOT_PREPARED: AtomicUsize = AtomicUsize::new(0);
static PER_NAME_PREPARED: AtomicUsize = AtomicUsize::new(0);

#[prepare_memory]
async fn prepare(shared: &Shared) -> memo_runtime::Result<()> {
    BOT_PREPARED.fetch_add(1, Ordering::SeqCst);
    // Slow on purpose: concurrent first accesses must all wait for this single run.
    tokio::time::sleep(Duration::from_millis(30)).await;
    shared.set("messages", 100u64).await?;
    shared.set("owner", "bot").await
}

#[prepare_memory(component = "per-name")]
async fn prepare_per_name(shared: &Shared) {
    PER_NAME_PREPARED.fetch_add(1, Ordering::SeqCst);
    shared.set("owner", "per-name").await.unwrap();
}

#[handler(event = "Message")]
async fn bot_handler(shared: &Shared, memo: &Memo) -> memo_runtime::Result<()> {
    let start: u64 = shared
        .get("messages")
        .await?
        .expect("the preparer ran before this handler");
    assert!(start >= 100);
    shared.update("messages", |n: &mut u64| *n += 1).await?;
    let owner: String = shared.get("owner").await?.unwrap();
    push(memo, format!("bot sees owner {owner}"));
    Ok(())
}

#[handler(event = "Message", component = "per-name")]
async fn component_handler(shared: &Shared, memo: &Memo) -> memo_runtime::Result<()> {
    let owner: String = shared.get("owner").await?.unwrap();
    let messages: Option<u64> = shared.get("messages").await?;
    push(memo, format!("per-name sees owner {owner}, messages {messages:?}"));
    Ok(())
}

#[handler(event = "Untouched")]
fn without_shared(memo: &Memo) {
    push(memo, "no shared asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preparers_run_once_before_dependents_and_components_are_isolated() {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let operator = Operator::new().memo(memo).workers(8).handle_signals(false);
    let bot = operator.shared();
    let per_name = operator.component_shared("per-name");
    let (events, source) = memo_runtime::source::channel(64);
    let running = tokio::spawn(operator.source(source).run());

    events
        .send(Event::added(object("Untouched", "u", None, Some("u-u"))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        BOT_PREPARED.load(Ordering::SeqCst),
        0,
        "lazy: nobody asked for shared yet"
    );

    for n in 0..16 {
        events
            .send(Event::added(object(
                "Message",
                &format!("m{n}"),
                None,
                Some(&format!("u{n}")),
            )))
            .await
            .unwrap();
    }
    drop(events);
    running.await.unwrap().unwrap();

    assert_eq!(BOT_PREPARED.load(Ordering::SeqCst), 1);
    assert_eq!(PER_NAME_PREPARED.load(Ordering::SeqCst), 1);
    assert_eq!(bot.get::<u64>("messages").await.unwrap(), Some(116));
    let log = entries(&log);
    assert_eq!(log.iter().filter(|e| *e == "bot sees owner bot").count(), 16);
    assert_eq!(
        log.iter()
            .filter(|e| *e == "per-name sees owner per-name, messages None")
            .count(),
        16
    );
    assert_eq!(per_name.keys().await.unwrap(), ["owner"]);
    assert_eq!(bot.keys().await.unwrap(), ["messages", "owner"]);
}

#[tokio::test]
async fn lock_names_are_per_component() {
    let operator = Operator::new();
    let bot = operator.shared();
    let component = operator.component_shared("per-name");
    let _held = bot.lock("update-messages").await.unwrap();
    // The same name in another memory is another lock: this does not wait.
    let other = tokio::time::timeout(Duration::from_secs(5), component.lock("update-messages")).await;
    assert!(
        other.is_ok(),
        "a component's lock must not wait for the bot's lock of the same name"
    );
    // The same name in the same memory is the same lock: this waits.
    let same = tokio::time::timeout(Duration::from_millis(50), bot.lock("update-messages")).await;
    assert!(same.is_err(), "the bot's lock is held");
    drop(_held);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), bot.lock("update-messages"))
            .await
            .is_ok()
    );
}
