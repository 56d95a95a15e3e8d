//! An operator on a fake cluster (`fake_api.rs`), for the tests of the Kubernetes source: started
//! on `source::kubernetes`, stopped by the test, its handlers' entries in a log in its memo.
#![allow(dead_code)]

use super::common::{Log, entries, log_in};
use super::fake_api::FakeApi;
use memo_runtime::prelude::*;
use memo_runtime::source::EventSource;
use serde_json::json;
use std::time::Duration;
use tokio::sync::oneshot;

/// An operator on `fake`'s cluster (all namespaces, or `namespaces`); stop it with the sender.
pub struct Running {
    pub log: Log,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<memo_runtime::Result<()>>,
}

/// `shard`: be replica `index` of `count` (the handlers log the index).
pub async fn start(fake: &FakeApi, namespaces: &[&str], shard: Option<(u64, u64)>) -> Running {
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    memo.insert("replica", shard.map_or(0, |(index, _)| index));
    let source = memo_runtime::source::kubernetes(fake.client(), namespaces.iter().copied())
        .await
        .expect("the kinds resolve");
    // The cluster never ends; the test ends it by ending a channel fed from it.
    let (stop, stopped) = oneshot::channel();
    let (sender, channel) = memo_runtime::source::channel(64);
    tokio::spawn(pump(source, sender, stopped));
    let operator = Operator::new()
        .memo(memo)
        .workers(1)
        .handle_signals(false)
        .source(channel);
    let operator = match shard {
        Some((index, count)) => operator.shard(index, count),
        None => operator,
    };
    Running {
        log,
        stop,
        task: tokio::spawn(operator.run()),
    }
}

async fn pump(mut source: EventSource, sender: memo_runtime::source::EventSender, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            event = source.next() => match event {
                Some(event) => if sender.send(event).await.is_err() { return },
                None => return,
            },
            _ = &mut stopped => return,
        }
    }
}

impl Running {
    /// Waits (in paused time: until the runtime is idle, as long as it takes) until `count`
    /// entries whose text starts with `prefix` are logged.
    pub async fn wait_for(&self, prefix: &str, count: usize) -> Vec<String> {
        for _ in 0..100_000 {
            let matching: Vec<String> = entries(&self.log)
                .into_iter()
                .filter(|e| e.starts_with(prefix))
                .collect();
            if matching.len() >= count {
                return matching;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "waited for {count} `{prefix}` entries; the log: {:#?}",
            entries(&self.log)
        );
    }

    pub fn kind_entries(&self) -> Vec<String> {
        entries(&self.log)
            .into_iter()
            .filter(|e| e.starts_with("ADDED") || e.starts_with("MODIFIED") || e.starts_with("DELETED"))
            .collect()
    }

    pub async fn stop(self) -> Log {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("the operator task panicked")
            .expect("the operator stops cleanly");
        self.log
    }
}

/// Three `KopfExample` objects, `a`, `b`, `c`, in `namespace`.
pub fn three(fake: &FakeApi, namespace: &str) {
    for name in ["a", "b", "c"] {
        fake.create("kopfexamples", Some(namespace), name, json!({"n": 1}));
    }
}
