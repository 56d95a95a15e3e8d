//! Restart safety against the fake API server, with the real kube client: one operator run after
//! another on the same cluster (each stopped as a graceful stop would stop it), and what the
//! second one does with the progress the first one left on the objects.
#![cfg(feature = "kube")]

mod common;
#[path = "support/fake_api.rs"]
mod fake_api;

use common::{Log, capture_logs, entries, log_in, push};
use fake_api::FakeApi;
use memo_runtime::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::oneshot;

#[handler(create = "KopfExample")]
fn provision(memo: &mut Memo, name: &str, retry: u32) {
    push(memo, format!("create {name} retry={retry}"));
}

#[handler(update = "KopfExample")]
fn reconfigure(memo: &mut Memo, name: &str, old: &Value, diff: &Diff) {
    let changes: Vec<String> = diff
        .iter()
        .map(|change| {
            format!(
                "{:?} {} -> {}",
                change.op(),
                change.path(),
                change.new().unwrap_or(&Value::Null)
            )
        })
        .collect();
    push(
        memo,
        format!("update {name} old_null={} {}", old.is_null(), changes.join(", ")),
    );
}

#[handler(delete = "KopfExample")]
fn deprovision(memo: &mut Memo, name: &str) {
    push(memo, format!("delete {name}"));
}

#[handler(resume = "KopfExample")]
fn reattach(memo: &mut Memo, name: &str) {
    push(memo, format!("resume {name}"));
}

#[handler(delete = "ConfigMap", optional)]
fn forget(memo: &mut Memo, name: &str) {
    push(memo, format!("forget {name}"));
}

#[handler(create = "Widget")]
fn widget_first(memo: &mut Memo, name: &str) {
    push(memo, format!("first {name}"));
}

// Fails on its first try, asking for a retry in a minute: the operator is stopped before then.
#[handler(create = "Widget")]
fn widget_flaky(memo: &mut Memo, name: &str, retry: u32) -> memo_runtime::Result<()> {
    push(memo, format!("flaky {name} retry={retry}"));
    if retry == 0 {
        return Err(Error::temporary("not yet", Duration::from_secs(60)));
    }
    Ok(())
}

#[handler(create = "Widget")]
fn widget_last(memo: &mut Memo, name: &str) {
    push(memo, format!("last {name}"));
}

fn fake() -> FakeApi {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.add_kind("kopf.dev", "v1", "Widget", "widgets", true);
    fake
}

/// One run of the operator on `fake`'s cluster; [`Run::stop`] ends its source, and it stops as
/// at any end (what runs finishes).
struct Run {
    log: Log,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<memo_runtime::Result<()>>,
}

async fn start(fake: &FakeApi) -> Run {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let (stop, stopped) = oneshot::channel::<()>();
    let source = memo_runtime::source::kubernetes(fake.client(), ["default"])
        .await
        .expect("the kinds resolve")
        .until(async move {
            let _ = stopped.await;
        });
    let operator = Operator::new()
        .memo(memo)
        .workers(1)
        .handle_signals(false)
        .source(source);
    Run {
        log,
        stop,
        task: tokio::spawn(operator.run()),
    }
}

impl Run {
    async fn wait_for(&self, prefix: &str, count: usize) {
        wait_until(&format!("{count} `{prefix}` in {:?}", entries(&self.log)), || {
            entries(&self.log)
                .iter()
                .filter(|entry| entry.starts_with(prefix))
                .count()
                >= count
        })
        .await;
    }

    /// Stops the run once nothing more happens; returns its log.
    async fn stop(self) -> Vec<String> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = self.stop.send(());
        self.task.await.expect("no panic").expect("a clean stop");
        entries(&self.log)
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("waited for {what}");
}

fn annotation(fake: &FakeApi, plural: &str, name: &str, key: &str) -> Option<String> {
    fake.object(plural, Some("default"), name)?
        .pointer("/metadata/annotations")?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

fn finalizers(fake: &FakeApi, plural: &str, name: &str) -> Vec<String> {
    fake.object(plural, Some("default"), name)
        .and_then(|object| object.pointer("/metadata/finalizers").cloned())
        .and_then(|list| serde_json::from_value(list).ok())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn create_runs_once_and_a_change_made_while_down_is_an_update() {
    let fake = fake();
    fake.create("kopfexamples", Some("default"), "e1", json!({"size": 1}));
    let run = start(&fake).await;
    run.wait_for("create e1", 1).await;
    wait_until("the record", || {
        annotation(&fake, "kopfexamples", "e1", "memo.dev/last-handled").is_some()
    })
    .await;
    assert_eq!(
        annotation(&fake, "kopfexamples", "e1", "memo.dev/last-handled").as_deref(),
        Some(r#"{"spec":{"size":1}}"#)
    );
    assert_eq!(
        finalizers(&fake, "kopfexamples", "e1"),
        ["memo.dev/finalizer"],
        "a delete handler holds one"
    );
    assert_eq!(run.stop().await, ["create e1 retry=0"], "nothing resumed: e1 was new");

    // While the operator is down: a change, and a new object.
    fake.replace("kopfexamples", Some("default"), "e1", json!({"size": 3}));
    fake.create("kopfexamples", Some("default"), "e2", json!({"size": 1}));
    let run = start(&fake).await;
    run.wait_for("create e2", 1).await;
    run.wait_for("resume e1", 1).await;
    let mut log = run.stop().await;
    log.sort();
    assert_eq!(
        log,
        [
            "create e2 retry=0",
            "resume e1",
            "update e1 old_null=false Change /spec/size -> 3",
        ]
    );
    assert_eq!(
        annotation(&fake, "kopfexamples", "e1", "memo.dev/last-handled").as_deref(),
        Some(r#"{"spec":{"size":3}}"#)
    );

    // A third start with nothing changed: only `resume`, once per object.
    let run = start(&fake).await;
    run.wait_for("resume", 2).await;
    let mut log = run.stop().await;
    log.sort();
    assert_eq!(log, ["resume e1", "resume e2"]);
}

#[tokio::test(start_paused = true)]
async fn a_deletion_while_down_runs_the_delete_handlers_on_the_next_start() {
    let fake = fake();
    fake.create("kopfexamples", Some("default"), "d1", json!({}));
    fake.create("configmaps", Some("default"), "c1", json!({}));
    let run = start(&fake).await;
    run.wait_for("create d1", 1).await;
    wait_until("the finalizer", || !finalizers(&fake, "kopfexamples", "d1").is_empty()).await;
    run.stop().await;
    assert!(
        finalizers(&fake, "configmaps", "c1").is_empty(),
        "`optional`: no finalizer"
    );
    assert_eq!(
        annotation(&fake, "configmaps", "c1", "memo.dev/last-handled"),
        None,
        "nor a record"
    );

    // Deleted while down: the finalizer holds the object, with its deletion started.
    fake.delete("kopfexamples", Some("default"), "d1");
    assert!(fake.object("kopfexamples", Some("default"), "d1").is_some());
    let run = start(&fake).await;
    run.wait_for("delete d1", 1).await;
    wait_until("the object gone", || {
        fake.object("kopfexamples", Some("default"), "d1").is_none()
    })
    .await;
    // An `optional` handler runs when its object goes, best effort.
    fake.delete("configmaps", Some("default"), "c1");
    run.wait_for("forget c1", 1).await;
    assert_eq!(
        run.stop().await,
        ["delete d1", "forget c1"],
        "no resume: d1 was being deleted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_cut_short_by_a_stop_goes_on_with_its_count_after_the_restart() {
    let fake = fake();
    fake.create("widgets", Some("default"), "w1", json!({}));
    let run = start(&fake).await;
    run.wait_for("flaky w1 retry=0", 1).await;
    wait_until("the unfinished event recorded", || {
        annotation(&fake, "widgets", "w1", "memo.dev/progress").is_some()
    })
    .await;
    let pending: Value =
        serde_json::from_str(&annotation(&fake, "widgets", "w1", "memo.dev/progress").unwrap()).unwrap();
    assert_eq!(pending["cause"], "create");
    assert_eq!(pending["done"], json!(["restarts::widget_first"]));
    assert_eq!(pending["waiting"]["handler"], "restarts::widget_flaky");
    assert_eq!(pending["waiting"]["retry"], 1);
    // Stopped before the retry's minute is up: the retry is dropped, its record stays.
    assert_eq!(run.stop().await, ["first w1", "flaky w1 retry=0"]);

    let run = start(&fake).await;
    run.wait_for("last w1", 1).await;
    assert_eq!(
        run.stop().await,
        ["flaky w1 retry=1", "last w1"],
        "`first` is not run again"
    );
    assert_eq!(annotation(&fake, "widgets", "w1", "memo.dev/progress"), None);
    assert_eq!(
        annotation(&fake, "widgets", "w1", "memo.dev/last-handled").as_deref(),
        Some(r#"{"spec":{}}"#)
    );
}

#[tokio::test(start_paused = true)]
async fn an_essence_too_large_for_annotations_is_kept_as_a_digest_once() {
    let (_guard, logs) = capture_logs();
    let fake = fake();
    let blob = "x".repeat(300 * 1024);
    fake.create("kopfexamples", Some("default"), "big", json!({"blob": blob}));
    let run = start(&fake).await;
    run.wait_for("create big", 1).await;
    wait_until("the digest", || {
        annotation(&fake, "kopfexamples", "big", "memo.dev/last-handled-digest").is_some()
    })
    .await;
    fake.reset_counts();
    assert_eq!(run.stop().await, ["create big retry=0"]);
    // Nothing was written after the digest: no loop of rejected or repeated writes.
    assert_eq!(annotation(&fake, "kopfexamples", "big", "memo.dev/last-handled"), None);
    let path = "/apis/kopf.dev/v1/namespaces/default/kopfexamples/big";
    assert_eq!(fake.count("PATCH", path), 0, "no write loop: {:#?}", fake.requests());

    // Changed while down: an update, whose `old` is not known.
    fake.replace("kopfexamples", Some("default"), "big", json!({"blob": blob, "size": 2}));
    let run = start(&fake).await;
    run.wait_for("update big", 1).await;
    // Entries cut short: the blob is 300 KiB.
    let log: Vec<String> = run
        .stop()
        .await
        .into_iter()
        .map(|entry| entry.chars().take(60).collect())
        .collect();
    assert_eq!(
        log,
        [
            r#"update big old_null=true Add  -> {"spec":{"blob":"xxxxxxxxxx"#,
            "resume big"
        ],
        "the whole essence is new: the diff's one change is at the root"
    );
    let warnings = entries(&logs)
        .into_iter()
        .filter(|line| line.contains("does not fit its annotations"))
        .count();
    assert_eq!(warnings, 1, "one warning");
}
