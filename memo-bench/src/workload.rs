//! Building events and running an operator over them.

use memo_runtime::{Event, EventType, Memo, Operator, source};
use serde_json::{Map, Value};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Room in the event channel: enough that the producer rarely waits for the operator and the
/// operator rarely waits for the producer.
pub const CHANNEL_CAPACITY: usize = 4096;

/// `count` events of `kind` spread round-robin over `resources` resources: event `i` is about
/// resource `i % resources`, `ADDED` the first time a resource appears and `MODIFIED` after.
///
/// Built before timing starts: making JSON is not what the benchmarks measure.
pub fn round_robin(kind: &str, count: usize, resources: usize) -> Vec<Event> {
    let names: Vec<(String, String)> = (0..resources.min(count))
        .map(|index| (format!("res-{index}"), format!("uid-{kind}-{index}")))
        .collect();
    (0..count)
        .map(|index| {
            let (name, uid) = &names[index % names.len()];
            let r#type = if index < names.len() {
                EventType::Added
            } else {
                EventType::Modified
            };
            Event::new(r#type, object(kind, name, uid))
        })
        .collect()
}

/// `count` `ADDED` events, each about a new resource.
pub fn all_new(kind: &str, count: usize) -> Vec<Event> {
    round_robin(kind, count, count)
}

/// A minimal Kubernetes-like object: what the runtime reads to route an event.
fn object(kind: &str, name: &str, uid: &str) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), name.into());
    metadata.insert("namespace".into(), "bench".into());
    metadata.insert("uid".into(), uid.into());
    let mut object = Map::new();
    object.insert("apiVersion".into(), "bench.memo.dev/v1".into());
    object.insert("kind".into(), kind.into());
    object.insert("metadata".into(), Value::Object(metadata));
    Value::Object(object)
}

/// An operator over a channel source, with signals off (the benchmark ends it by ending the
/// source) and `workers` workers.
fn operator(memo: Memo, workers: usize) -> (source::EventSender, Operator) {
    let (sender, source) = source::channel(CHANNEL_CAPACITY);
    let operator = Operator::new()
        .memo(memo)
        .workers(workers)
        .handle_signals(false)
        .source(source);
    (sender, operator)
}

/// Sends every event from a separate task, then ends the source. Returns the wall time from
/// starting the operator to its return, which includes draining and dropping every resource.
pub async fn run_operator(events: Vec<Event>, workers: usize, memo: Memo) -> Duration {
    let (sender, operator) = operator(memo, workers);
    run_with_producer(events, sender, operator).await
}

/// [`run_operator`], serving its liveness endpoint and counting its metrics (on a free loopback
/// port) while it runs.
pub async fn run_operator_with_liveness(events: Vec<Event>, workers: usize) -> Duration {
    let (sender, operator) = operator(Memo::new(), workers);
    run_with_producer(events, sender, operator.liveness("127.0.0.1:0")).await
}

async fn run_with_producer(events: Vec<Event>, sender: source::EventSender, operator: Operator) -> Duration {
    let start = Instant::now();
    let running = tokio::spawn(operator.run());
    let producer = tokio::spawn(async move {
        for event in events {
            sender.send(event).await.expect("the operator stopped early");
        }
    });
    producer.await.expect("the producer panicked");
    running
        .await
        .expect("the operator panicked")
        .expect("the operator failed");
    start.elapsed()
}

/// Like [`run_operator`] with one worker, but over `shards` independent operators, each getting
/// the events of the resources whose uid hashes to it. The producer routes each event as it
/// sends it, so the routing cost is measured too.
///
/// This is what a sharded dispatcher inside the runtime could do: every resource lives on one
/// shard, so its events stay in order, and no state travels between tasks per event.
/// Runs an operator over a watch stream held in memory, read as `--source FILE` reads a file
/// (`json_reader`: parsed on the reading thread), timed from the start of the run to its end.
pub async fn run_stream(bytes: Vec<u8>, workers: usize) -> Duration {
    let source = source::json_reader(std::io::Cursor::new(bytes));
    let operator = Operator::new().workers(workers).handle_signals(false).source(source);
    let start = Instant::now();
    operator.run().await.expect("the operator failed");
    start.elapsed()
}

pub async fn run_sharded(events: Vec<Event>, shards: usize, memo: Memo) -> Duration {
    let (senders, operators): (Vec<_>, Vec<_>) = (0..shards).map(|_| operator(memo.clone(), 1)).unzip();
    let hasher = std::collections::hash_map::RandomState::new();
    let start = Instant::now();
    let running: Vec<_> = operators
        .into_iter()
        .map(|operator| tokio::spawn(operator.run()))
        .collect();
    let producer = tokio::spawn(async move {
        for event in events {
            let uid = event.uid().expect("every benchmark event has a uid");
            let shard = (hasher.hash_one(uid) % senders.len() as u64) as usize;
            senders[shard].send(event).await.expect("the operator stopped early");
        }
    });
    producer.await.expect("the producer panicked");
    finish(running).await;
    start.elapsed()
}

/// Operators of 1 worker, one per part of `parts`, each fed its part by a producer of its own:
/// nothing is shared, not even the reading of a uid to route an event (the parts are made before
/// the clock starts). What two engines side by side can do at most.
pub async fn run_apart(parts: Vec<Vec<Event>>, memo: Memo) -> Duration {
    let start = Instant::now();
    let running: Vec<_> = parts
        .into_iter()
        .map(|part| {
            let (sender, operator) = operator(memo.clone(), 1);
            let running = tokio::spawn(operator.run());
            tokio::spawn(async move {
                for event in part {
                    sender.send(event).await.expect("the operator stopped early");
                }
            });
            running
        })
        .collect();
    finish(running).await;
    start.elapsed()
}

/// Waits for every operator of `running` to return, each without failing.
async fn finish(running: Vec<tokio::task::JoinHandle<memo_runtime::Result<()>>>) {
    for operator in running {
        operator
            .await
            .expect("the operator panicked")
            .expect("the operator failed");
    }
}

/// An operator fed `events` that keeps its source open until told to end it, so that what the
/// operator holds can be inspected while it holds it.
pub struct HeldOperator {
    running: tokio::task::JoinHandle<memo_runtime::Result<()>>,
    all_sent: oneshot::Receiver<()>,
    end: oneshot::Sender<()>,
}

impl HeldOperator {
    /// Starts the operator and a producer that sends `events`, frees their buffer, and waits.
    pub fn start(events: Vec<Event>, workers: usize, memo: Memo) -> Self {
        Self::start_replica(events, workers, memo, None)
    }

    /// The same, as replica `index` of `count` (`--shard index/count`): it reads every event and
    /// keeps only its share.
    pub fn start_replica(events: Vec<Event>, workers: usize, memo: Memo, shard: Option<(u64, u64)>) -> Self {
        let (sender, operator) = operator(memo, workers);
        let operator = match shard {
            Some((index, count)) => operator.shard(index, count),
            None => operator,
        };
        let running = tokio::spawn(operator.run());
        let (sent, all_sent) = oneshot::channel();
        let (end, ended) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut events = events.into_iter();
            for event in events.by_ref() {
                sender.send(event).await.expect("the operator stopped early");
            }
            drop(events);
            let _ = sent.send(());
            let _ = ended.await;
            drop(sender);
        });
        HeldOperator { running, all_sent, end }
    }

    /// Waits until every event was sent and the producer freed the event buffer.
    pub async fn all_sent(&mut self) {
        (&mut self.all_sent).await.expect("the producer panicked");
    }

    /// Ends the source and waits for the operator to drain and return.
    pub async fn finish(self) {
        let _ = self.end.send(());
        self.running
            .await
            .expect("the operator panicked")
            .expect("the operator failed");
    }
}
