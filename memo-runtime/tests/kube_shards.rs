//! `--shard auto` against a cluster without a shared store: two operators in one process, each
//! watching the fake API server with the real kube client, share the buckets through Lease
//! objects (`Operator::lease_namespace`), handle every object once between them, and one that
//! stops hands its buckets over.
#![cfg(feature = "kube")]

mod common;
#[path = "support/fake_api.rs"]
mod fake_api;

use common::{Log, entries, push};
use fake_api::FakeApi;
use memo_runtime::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[handler(create = "KopfExample")]
fn seen(memo: &mut Memo, name: &str) {
    let replica = memo.get::<u64>("replica").copied().unwrap_or(0);
    push(memo, format!("create {replica} {name}"));
}

#[handler(resume = "KopfExample")]
fn resumed(memo: &mut Memo, name: &str) {
    let replica = memo.get::<u64>("replica").copied().unwrap_or(0);
    push(memo, format!("resume {replica} {name}"));
}

struct Replica {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<memo_runtime::Result<()>>,
}

async fn replica(fake: &FakeApi, index: u64, log: &Log) -> Replica {
    let mut memo = Memo::new();
    memo.insert("log", log.clone());
    memo.insert("replica", index);
    let (stop, stopped) = oneshot::channel::<()>();
    let source = memo_runtime::source::kubernetes(fake.client(), ["default"])
        .await
        .expect("the kinds resolve")
        .until(async move {
            let _ = stopped.await;
        });
    let operator = Operator::new()
        .memo(memo)
        .name("kube-shards")
        .handle_signals(false)
        .shard_auto()
        .lease_namespace("operators")
        .lease_duration(Duration::from_secs(2))
        .source(source);
    Replica {
        stop,
        task: tokio::spawn(operator.run()),
    }
}

/// The holders of the 256 bucket Leases, and how many each holds.
fn holders(fake: &FakeApi) -> BTreeMap<String, usize> {
    let mut holders = BTreeMap::new();
    for bucket in 0..256 {
        let holder = fake
            .object(
                "leases",
                Some("operators"),
                &format!("memo-kube-shards-bucket-{bucket}"),
            )
            .and_then(|lease| lease["spec"]["holderIdentity"].as_str().map(str::to_owned))
            .unwrap_or_default();
        *holders.entry(holder).or_insert(0) += 1;
    }
    holders
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "waited for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates `e{n}` with a uid shaped as the API server's (a random UUID), so that uids spread
/// over the hash space as real ones do.
fn create(fake: &FakeApi, n: u64) -> String {
    let mix = |mut x: u64| {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let (high, low) = (mix(n), mix(n + 1_000_000));
    let uid = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        (low >> 48) & 0x3fff | 0x8000,
        low & 0xffff_ffff_ffff
    );
    fake.create_with(
        "kopfexamples",
        Some("default"),
        &format!("e{n}"),
        json!({}),
        json!({"uid": uid}),
    );
    uid
}

/// Which replicas ran `what` (`create`, `resume`) for each object.
fn ran(log: &Log, what: &str) -> BTreeMap<String, Vec<String>> {
    let mut ran: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in entries(log) {
        let mut words = entry.split(' ');
        let (Some(kind), Some(replica), Some(name)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if kind == what {
            ran.entry(name.to_owned()).or_default().push(replica.to_owned());
        }
    }
    ran
}

fn handled(log: &Log) -> BTreeMap<String, Vec<String>> {
    ran(log, "create")
}

/// The holder of the bucket Lease of `uid`.
fn holder_of(fake: &FakeApi, uid: &str) -> String {
    let bucket = memo_runtime::shard::bucket_of(uid);
    fake.object(
        "leases",
        Some("operators"),
        &format!("memo-kube-shards-bucket-{bucket}"),
    )
    .and_then(|lease| lease["spec"]["holderIdentity"].as_str().map(str::to_owned))
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_buckets_through_lease_objects() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.add_kind("coordination.k8s.io", "v1", "Lease", "leases", true);
    let log = Log::default();
    let first = replica(&fake, 1, &log).await;
    let second = replica(&fake, 2, &log).await;
    wait_until("an even split", || {
        let holders = holders(&fake);
        !holders.contains_key("") && holders.len() == 2 && holders.values().all(|&count| count == 128)
    })
    .await;

    for n in 0..60 {
        let _ = create(&fake, n);
    }
    wait_until("every object handled", || handled(&log).len() == 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let by_object = handled(&log);
    assert!(
        by_object.values().all(|replicas| replicas.len() == 1),
        "once each: {by_object:?}"
    );
    let firsts = by_object.values().filter(|replicas| replicas[0] == "1").count();
    assert!(firsts > 0 && firsts < 60, "both replicas handled some: {firsts} of 60");

    // The first stops: its buckets go to the second as it leaves.
    let _ = first.stop.send(());
    first.task.await.unwrap().unwrap();
    wait_until("the second holding every bucket", || {
        holders(&fake).len() == 1 && !holders(&fake).contains_key("")
    })
    .await;
    for n in 60..80 {
        let _ = create(&fake, n);
    }
    wait_until("the new objects handled", || handled(&log).len() == 80).await;
    let by_object = handled(&log);
    for n in 60..80 {
        assert_eq!(by_object[&format!("e{n}")], ["2"], "e{n}");
    }
    let _ = second.stop.send(());
    second.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_gains_buckets_handles_their_objects_from_their_progress_at_once() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.add_kind("coordination.k8s.io", "v1", "Lease", "leases", true);
    let log = Log::default();
    let first = replica(&fake, 1, &log).await;
    wait_until("the first holding every bucket", || {
        let holders = holders(&fake);
        holders.len() == 1 && !holders.contains_key("")
    })
    .await;
    let uids: Vec<(String, String)> = (0..40).map(|n| (format!("e{n}"), create(&fake, n))).collect();
    wait_until("every object created and recorded", || {
        handled(&log).len() == 40
            && uids.iter().all(|(name, _)| {
                fake.object("kopfexamples", Some("default"), name)
                    .is_some_and(|object| object["metadata"]["annotations"]["memo.dev/last-handled"].is_string())
            })
    })
    .await;

    // A second replica joins: the buckets it gains are handed to it with their objects, which
    // it takes up from their records at once (their `resume` handlers run; nothing is created
    // again), without waiting for a change.
    let second = replica(&fake, 2, &log).await;
    wait_until("an even split", || {
        let holders = holders(&fake);
        !holders.contains_key("") && holders.len() == 2 && holders.values().all(|&count| count == 128)
    })
    .await;
    wait_until("resumed by the second", || !ran(&log, "resume").is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let resumed = ran(&log, "resume");
    let (some_name, _) = resumed.iter().next().unwrap();
    let uid_of = |name: &str| uids.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let second_holder = holder_of(&fake, &uid_of(some_name));
    let expected: Vec<&String> = uids
        .iter()
        .filter(|(_, uid)| holder_of(&fake, uid) == second_holder)
        .map(|(name, _)| name)
        .collect();
    assert!(!expected.is_empty() && expected.len() < 40, "{expected:?}");
    assert_eq!(resumed.keys().collect::<Vec<_>>().len(), expected.len(), "{resumed:?}");
    for name in &expected {
        assert_eq!(resumed[*name], ["2"], "{name}");
    }
    assert!(
        handled(&log).values().all(|replicas| replicas == &["1"]),
        "created once, by the first"
    );
    for replica in [first, second] {
        let _ = replica.stop.send(());
        replica.task.await.unwrap().unwrap();
    }
}
