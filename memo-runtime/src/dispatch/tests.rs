//! The engine on its own: lanes holding work behind a retry, a deletion cancelling it, per-resource
//! order across lanes, and the router's choice of lane. Handlers are registered by hand here, as
//! the macro would.

use super::batch::Batch;
use super::lane::LaneStats;
use super::router::{Router, least_busy};
use super::*;
use crate::api::error::RetryHint;
use crate::api::event::{Event, EventType};
use crate::api::shard::{BUCKETS, Owned, Sharding};
use crate::contract::context::Context;
use crate::contract::outcome::{HandlerError, Outcome};
use crate::contract::registry::{EventFilter, Filters, Invoke, Registration, RetryPolicy, Trigger};
use crate::shared::SharedMemory;
use crate::store::{InProcessStore, StoreRef};
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// What the handlers saw: `TYPE name spec.n`, per test (each test its own kind).
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Whether the `Flaky` create handler failed already.
static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

fn record(context: &mut Context<'_>) -> Outcome {
    let event = context.env.event.expect("an event handler sees its event");
    let line = format!(
        "{} {} {} {}",
        event.kind().unwrap_or_default(),
        event.r#type.as_str(),
        event.name().unwrap_or_default(),
        event.object["spec"]["n"]
    );
    LOG.lock().unwrap().push(line);
    let flaky = event.kind() == Some("Flaky");
    if flaky && event.r#type == EventType::Added && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
        return Err(HandlerError {
            message: "not yet".into(),
            retry: RetryHint::After(Duration::from_secs(10)),
        });
    }
    if event.object["spec"]["fail"] == true && event.r#type == EventType::Added {
        return Err(HandlerError {
            message: "never".into(),
            retry: RetryHint::After(Duration::from_secs(10)),
        });
    }
    Ok(())
}

/// The leases of the `--shard auto` tests, per kind: every bucket owned until a handler lapses them.
static LEASES: Mutex<Vec<(String, Arc<Owned>)>> = Mutex::new(Vec::new());

fn leases(kind: &str) -> Arc<Owned> {
    let mut leases = LEASES.lock().unwrap();
    if let Some((_, owned)) = leases.iter().find(|(of, _)| of == kind) {
        return Arc::clone(owned);
    }
    let owned = Arc::new(Owned::default());
    for bucket in 0..BUCKETS {
        owned.set(bucket, true);
        owned.hold_until(bucket, std::time::Instant::now() + Duration::from_secs(3600));
    }
    leases.push((kind.to_owned(), Arc::clone(&owned)));
    owned
}

/// Records, then lets every lease of its kind lapse (as a keeper that could not renew them in
/// time) when `spec.lose` says so, or `spec.lose_on_retry` on a retry; fails its first call if
/// `spec.fail_once`.
fn lapse(context: &mut Context<'_>) -> Outcome {
    record(context)?;
    let event = context.env.event.expect("an event handler sees its event");
    let spec = &event.object["spec"];
    let retried = context.retry > 0;
    if spec["lose"] == true || (retried && spec["lose_on_retry"] == true) {
        let owned = leases(event.kind().unwrap_or_default());
        for bucket in 0..BUCKETS {
            owned.hold_until(bucket, std::time::Instant::now());
        }
    }
    if spec["fail_once"] == true && !retried {
        return Err(HandlerError {
            message: "not yet".into(),
            retry: RetryHint::After(Duration::from_secs(10)),
        });
    }
    Ok(())
}

const fn registration(resource: &'static str, filter: EventFilter) -> Registration {
    handler("dispatch::tests::record", resource, filter, Invoke::Sync(record))
}

const fn handler(id: &'static str, resource: &'static str, filter: EventFilter, invoke: Invoke) -> Registration {
    Registration {
        id,
        explicit_id: false,
        module_path: "memo_runtime::dispatch::tests",
        file: "tests.rs",
        line: 1,
        column: 1,
        trigger: Trigger::Event { resource, filter },
        memo_type: None,
        component: None,
        uses_shared: false,
        uses_labels: false,
        uses_annotations: false,
        uses_patch: false,
        uses_recorder: false,
        uses_client: false,
        optional: false,
        invoke,
        retry: RetryPolicy {
            retries: Some(5),
            backoff: Duration::from_secs(1),
            timeout: None,
        },
        filters: Filters::NONE,
    }
}

static FLAKY_CREATE: Registration = registration("Flaky", EventFilter::Added);
static FLAKY_UPDATE: Registration = registration("Flaky", EventFilter::Modified);
static DOOMED_CREATE: Registration = registration("Doomed", EventFilter::Added);
static DOOMED_UPDATE: Registration = registration("Doomed", EventFilter::Modified);
static DOOMED_DELETE: Registration = registration("Doomed", EventFilter::Deleted);
static ORDERED: Registration = registration("Ordered", EventFilter::Any);
static LAPSING_FIRST: Registration = handler("lapse", "Lapsing", EventFilter::Any, Invoke::Sync(lapse));
static LAPSING_SECOND: Registration = registration("Lapsing", EventFilter::Any);
static HELD_CREATE: Registration = handler("lapse", "Held", EventFilter::Added, Invoke::Sync(lapse));
static HELD_UPDATE: Registration = registration("Held", EventFilter::Modified);

fn catalog(handlers: &[&'static Registration]) -> Catalog {
    let memory = SharedMemory::new(Vec::new(), StoreRef::of(InProcessStore::new()), "bot".into());
    Catalog::new(handlers, memory, None)
}

fn event(r#type: EventType, kind: &str, name: &str, spec: serde_json::Value) -> Event {
    let object = json!({
        "apiVersion": "memo.dev/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "d", "uid": format!("uid-{name}")},
        "spec": spec,
    });
    match r#type {
        EventType::Added => Event::added(object),
        EventType::Modified => Event::modified(object),
        EventType::Deleted => Event::deleted(object),
    }
}

fn logged(kind: &str) -> Vec<String> {
    let prefix = format!("{kind} ");
    LOG.lock()
        .unwrap()
        .iter()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// Runs `events` through an engine of `workers` lanes, keeping the source open for `open` after
/// sending them (time is paused: it passes as soon as nothing else can run).
async fn run(handlers: &[&'static Registration], workers: usize, events: Vec<Event>, open: Duration) -> Stop {
    run_sharded(handlers, workers, events, open, None).await
}

/// The same, as one replica of several, owning what `shard` says.
async fn run_sharded(
    handlers: &[&'static Registration],
    workers: usize,
    events: Vec<Event>,
    open: Duration,
    shard: Option<Sharding>,
) -> Stop {
    let (sender, source) = crate::source::channel(events.len().max(1));
    let stop = Stop::default();
    let dispatcher = Dispatcher::new((), catalog(handlers), stop.clone(), shard, None, Default::default());
    let running = tokio::spawn(dispatcher.run(source, workers, InFlight::default()));
    for event in events {
        sender.send(event).await.unwrap();
    }
    tokio::time::sleep(open).await;
    drop(sender);
    running.await.unwrap().unwrap();
    stop
}

#[tokio::test(start_paused = true)]
async fn work_waits_behind_a_retry_while_other_resources_go_on() {
    let added = |name, n| event(EventType::Added, "Flaky", name, json!({"n": n}));
    let events = vec![
        added("a", 1),
        event(EventType::Modified, "Flaky", "a", json!({"n": 2})),
        added("b", 3),
    ];
    run(&[&FLAKY_CREATE, &FLAKY_UPDATE], 1, events, Duration::from_secs(11)).await;
    assert_eq!(
        logged("Flaky"),
        ["ADDED a 1", "ADDED b 3", "ADDED a 1", "MODIFIED a 2"],
        "b is not held up by a's retry; a's update waits for it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deletion_cancels_a_create_retry_and_what_waited_behind_it() {
    let events = vec![
        event(EventType::Added, "Doomed", "c", json!({"n": 1, "fail": true})),
        event(EventType::Modified, "Doomed", "c", json!({"n": 2})),
        event(EventType::Deleted, "Doomed", "c", json!({"n": 3})),
    ];
    run(
        &[&DOOMED_CREATE, &DOOMED_UPDATE, &DOOMED_DELETE],
        1,
        events,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(logged("Doomed"), ["ADDED c 1", "DELETED c 3"]);
}

#[tokio::test(start_paused = true)]
async fn a_lease_lost_while_a_handler_runs_starts_nothing_after_it() {
    let modified = |n, lose| event(EventType::Modified, "Lapsing", "l", json!({"n": n, "lose": lose}));
    let events = vec![modified(1, false), modified(2, true), modified(3, false)];
    let shard = Sharding::Leased(leases("Lapsing"));
    run_sharded(
        &[&LAPSING_FIRST, &LAPSING_SECOND],
        1,
        events,
        Duration::ZERO,
        Some(shard),
    )
    .await;
    assert_eq!(
        logged("Lapsing"),
        ["MODIFIED l 1", "MODIFIED l 1", "MODIFIED l 2"],
        "the second handler of event 2 and event 3 are the bucket's next owner's"
    );
}

#[tokio::test(start_paused = true)]
async fn what_waited_behind_a_retry_is_not_run_once_the_lease_is_lost() {
    let events = vec![
        event(
            EventType::Added,
            "Held",
            "h",
            json!({"n": 1, "fail_once": true, "lose_on_retry": true}),
        ),
        event(EventType::Modified, "Held", "h", json!({"n": 2})),
    ];
    let shard = Sharding::Leased(leases("Held"));
    run_sharded(
        &[&HELD_CREATE, &HELD_UPDATE],
        1,
        events,
        Duration::from_secs(11),
        Some(shard),
    )
    .await;
    assert_eq!(
        logged("Held"),
        ["ADDED h 1", "ADDED h 1"],
        "the update that waited behind the retry is the bucket's next owner's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_resource_keeps_its_order_across_lanes_and_incarnations() {
    let mut events = Vec::new();
    for round in 0..20 {
        for resource in 0..8 {
            events.push(event(
                EventType::Modified,
                "Ordered",
                &format!("r{resource}"),
                json!({"n": round}),
            ));
        }
        if round == 10 {
            // r0 is deleted and comes back: its later events are a new incarnation's.
            events.push(event(EventType::Deleted, "Ordered", "r0", json!({"n": "gone"})));
        }
    }
    run(&[&ORDERED], 3, events, Duration::ZERO).await;
    let log = logged("Ordered");
    assert_eq!(log.len(), 8 * 20 + 1);
    for resource in 0..8 {
        let name = format!("r{resource}");
        let seen: Vec<&String> = log
            .iter()
            .filter(|line| line.split(' ').nth(1) == Some(name.as_str()))
            .collect();
        let mut expected: Vec<String> = (0..20).map(|n| format!("MODIFIED {name} {n}")).collect();
        if resource == 0 {
            expected.insert(11, "DELETED r0 \"gone\"".to_owned());
        }
        assert_eq!(seen, expected.iter().collect::<Vec<_>>(), "{name}");
    }
}

#[test]
fn a_new_resource_goes_to_the_least_busy_lane_and_idle_lanes_take_turns() {
    let stats: Vec<Arc<LaneStats>> = (0..3).map(|_| Arc::default()).collect();
    assert_eq!(least_busy(&stats, 0), 0);
    assert_eq!(least_busy(&stats, 2), 2, "all idle: from where the turn is");
    // Lane 0 holds a stuck handler, lane 1 finished all it had.
    stats[0].handed.store(5, Ordering::Relaxed);
    stats[0].finished.store(4, Ordering::Relaxed);
    stats[1].handed.store(9, Ordering::Relaxed);
    stats[1].finished.store(9, Ordering::Relaxed);
    stats[2].handed.store(1, Ordering::Relaxed);
    assert_eq!(least_busy(&stats, 0), 1);
}

#[test]
fn the_router_forgets_a_resource_only_if_nothing_more_was_sent_its_way() {
    let stats: Vec<Arc<LaneStats>> = (0..2).map(|_| Arc::default()).collect();
    let (senders, _receivers): (Vec<_>, Vec<_>) = (0..2).map(|_| mpsc::channel(1)).unzip();
    let (_forgotten_sender, forgotten) = mpsc::unbounded_channel();
    let mut router = Router::new(senders, forgotten, catalog(&[&ORDERED]), None, None, &stats);
    let modified = |name| event(EventType::Modified, "Ordered", name, json!({}));
    router.place(modified("x"));
    router.place(modified("x"));
    assert_eq!(router.batches[0].len(), 2, "x stays on its lane");
    assert_eq!(router.batches[0].names()[1], ("x".to_owned(), 2));
    // The lane forgot x after its first event, but the second is on its way: x stays.
    router.forget("uid-x", 1);
    router.place(modified("x"));
    assert_eq!(router.batches[0].len(), 3);
    // Forgotten after the last one sent: x's next event may go anywhere (lane 0 is busiest).
    router.forget("uid-x", 3);
    stats[0].handed.store(3, Ordering::Relaxed);
    router.place(modified("x"));
    assert_eq!((router.batches[0].len(), router.batches[1].len()), (3, 1));
    // Kinds no handler selects are not routed, nor remembered.
    router.place(event(EventType::Added, "Unknown", "y", json!({})));
    assert_eq!(router.assigned.len(), 1);
}

/// What a router's batches hold: per lane, each event's resource name and number.
fn batched(router: &Router<'_>) -> Vec<Vec<(String, u32)>> {
    router.batches.iter().map(Batch::names).collect()
}

#[test]
fn a_burst_goes_where_its_events_placed_one_by_one_would() {
    let (senders, _receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel(1)).unzip();
    let stats: Vec<Arc<LaneStats>> = (0..3).map(|_| Arc::default()).collect();
    // Owns the resources whose uid falls in the first half of the hash range.
    let shard = Sharding::Static(crate::api::shard::Shard::new(0, 2).unwrap());
    let new_router = |senders| {
        let (_forgotten_sender, forgotten) = mpsc::unbounded_channel();
        Router::new(
            senders,
            forgotten,
            catalog(&[&ORDERED]),
            Some(shard.clone()),
            None,
            &stats,
        )
    };
    let (mut one_by_one, mut in_bursts) = (new_router(senders.clone()), new_router(senders));
    let modified = |name: &str| event(EventType::Modified, "Ordered", name, json!({}));
    let no_uid = |name: &str| {
        let mut event = modified(name);
        Arc::make_mut(&mut event.object)["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("uid");
        event
    };
    let bursts: Vec<Vec<Event>> = vec![
        // New resources, one of them twice: assigned in order, numbered in order.
        (0..12).map(|n| modified(&format!("r{}", n % 7))).collect(),
        // Known ones mixed with new ones, one without a uid, a kind no handler selects, and an
        // object with no kind.
        vec![
            modified("r3"),
            modified("n1"),
            no_uid("plain"),
            modified("r3"),
            event(EventType::Added, "Unknown", "u", json!({})),
            Event::added(json!({"metadata": {"name": "bare", "uid": "uid-bare"}})),
            modified("n1"),
            no_uid("plain"),
            modified("r0"),
        ],
        vec![modified("r5")],
    ];
    for burst in bursts {
        for event in burst.clone() {
            one_by_one.place(event);
        }
        in_bursts.burst.extend(burst);
        in_bursts.place_burst();
        assert_eq!(batched(&in_bursts), batched(&one_by_one));
        assert!(in_bursts.burst.is_empty() && in_bursts.routes.is_empty());
    }
    let placed: usize = in_bursts.batches.iter().map(Batch::len).sum();
    let owned = (0..7)
        .map(|n| format!("uid-r{n}"))
        .chain(["uid-n1".to_owned()])
        .filter(|uid| shard.owns(uid))
        .count();
    assert!(owned > 0 && owned < 8, "the shard owns some of the resources, not all");
    assert!(placed < 22, "other shards' events are not placed");
}

#[test]
fn a_document_of_a_known_resource_goes_to_its_lane_unparsed_and_any_other_is_parsed_here() {
    let (senders, _receivers): (Vec<_>, Vec<_>) = (0..2).map(|_| mpsc::channel(1)).unzip();
    let stats: Vec<Arc<LaneStats>> = (0..2).map(|_| Arc::default()).collect();
    let (_forgotten_sender, forgotten) = mpsc::unbounded_channel();
    let mut router = Router::new(senders, forgotten, catalog(&[&ORDERED]), None, None, &stats);
    let document = |r#type: &str, kind: &str, name: &str| {
        let object = json!({
            "apiVersion": "memo.dev/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "d", "uid": format!("uid-{name}")},
        });
        json!({"type": r#type, "object": object}).to_string()
    };
    let mut place = |text: String| router.place_document(text.as_bytes(), 1, 1);
    place(document("ADDED", "Ordered", "x"));
    place(document("MODIFIED", "Ordered", "x"));
    place(r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"5"}}}"#.to_owned());
    place(document("ADDED", "Ordered", "y"));
    place(document("MODIFIED", "Ordered", "x"));
    place(document("ADDED", "Unknown", "u"));
    place("{not json".to_owned());
    let named = |names: &[(&str, u32)]| -> Vec<(String, u32)> {
        names.iter().map(|(name, seq)| ((*name).to_owned(), *seq)).collect()
    };
    assert_eq!(
        batched(&router),
        [named(&[("x", 1), ("x", 2), ("x", 3)]), named(&[("y", 1)])]
    );
    // x's first document was parsed here, to check its kind; the next two travel as bytes.
    assert_eq!((router.batches[0].documents(), router.batches[1].documents()), (2, 0));
    assert_eq!(router.assigned.len(), 2, "kinds no handler selects are not remembered");
    let events: Vec<(EventType, u32)> = std::mem::take(&mut router.batches[0])
        .into_events()
        .map(|(event, seq)| (event.expect("each is an event").r#type, seq))
        .collect();
    assert_eq!(
        events,
        [
            (EventType::Added, 1),
            (EventType::Modified, 2),
            (EventType::Modified, 3)
        ]
    );
}
