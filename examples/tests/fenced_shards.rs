//! `--shard auto` when one replica loses Redis and the other does not: a proxy between one
//! replica of `fenced_counter` and a real `redis-server` stops forwarding (both ways, bytes held,
//! delivered late when it forwards again) for longer than the lease. The cut-off replica must
//! stop handling its buckets before the other takes them over: per bucket, the fencing tokens of
//! the handlers' starts, in time order across both processes, never go back to an older holder.
#![cfg(feature = "redis")]

mod processes;
#[path = "../../memo-runtime/tests/support/redis_server.rs"]
mod redis_server;

use processes::{PATIENCE, Process, owning, split_between};
use redis_server::RedisServer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A TCP proxy to a local port that can stop forwarding: while paused, it reads and writes
/// nothing (what was sent waits, and arrives once it forwards again), and new connections wait.
struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let paused = Arc::new(AtomicBool::new(false));
        let held = Arc::clone(&paused);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                wait_while(&held);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Arc::clone(&held),
                );
                pump(server, client, Arc::clone(&held));
            }
        });
        Proxy { port, paused }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

fn wait_while(paused: &AtomicBool) {
    while paused.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(5));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, paused: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            wait_while(&paused);
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(read) => read,
            };
            // Read just before a pause: held too.
            wait_while(&paused);
            if to.write_all(&buffer[..read]).is_err() {
                let _ = from.shutdown(Shutdown::Read);
                return;
            }
        }
    });
}

/// A uid that spreads over the buckets, as real (random) uids do.
fn uid(index: usize) -> String {
    let mut x = index as u64 ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}-{index}", x ^ (x >> 31))
}

const RESOURCES: usize = 64;

/// Events `first..first + count`, over `RESOURCES` resources.
fn batch(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|index| {
            let resource = index % RESOURCES;
            let event = serde_json::json!({
                "type": if index < RESOURCES { "ADDED" } else { "MODIFIED" },
                "object": {
                    "apiVersion": "memo.dev/v1",
                    "kind": "KopfExample",
                    "metadata": {"name": format!("ex{resource}"), "namespace": "default", "uid": uid(resource)},
                    "spec": {"n": index},
                }
            });
            format!("{event}\n")
        })
        .collect()
}

fn replica(url: &str) -> Process {
    Process::start(
        "fenced_counter",
        &[
            "--redis",
            url,
            "--name",
            "fenced",
            "--shard",
            "auto",
            "--lease-duration",
            "2s",
        ],
        &[],
    )
}

/// One handler start: (event number, bucket, token, Unix milliseconds).
#[derive(Debug, Clone, Copy)]
struct Start {
    n: usize,
    bucket: usize,
    token: u64,
    at: u128,
}

fn starts(stdout: &str) -> Vec<Start> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("handled ")?.split(' ');
            let _name = words.next()?;
            let n = words.next()?.parse().ok()?;
            let bucket = words.next()?.strip_prefix("bucket=")?.parse().ok()?;
            let token = words.next()?.strip_prefix("token=")?.parse().ok()?;
            let at = words.next()?.strip_prefix("at=")?.parse().ok()?;
            Some(Start { n, bucket, token, at })
        })
        .collect()
}

/// The next `count` events, to both replicas.
fn feed(next: &mut usize, cut: &mut Process, other: &mut Process, count: usize) {
    let events = batch(*next, count);
    cut.write(&events);
    other.write(&events);
    *next += count;
}

#[test]
fn a_replica_cut_off_from_redis_stops_before_another_takes_its_buckets_over() {
    let Some(server) = RedisServer::start() else { return };
    let proxy = Proxy::start(server.port());
    let mut cut = replica(&proxy.url());
    let mut other = replica(&server.url());
    let started = Instant::now();
    while !split_between(&[&cut, &other]) {
        assert!(
            started.elapsed() < PATIENCE,
            "no split:\n{}\n---\n{}",
            cut.stderr(),
            other.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let owned_before = owning(&cut.stderr()).unwrap().0;
    assert!(owned_before > 0);

    // Events all along: before the cut, during it (longer than the 2 s lease), and after.
    let mut next = 0;
    for _ in 0..10 {
        feed(&mut next, &mut cut, &mut other, 8);
        thread::sleep(Duration::from_millis(100));
    }
    proxy.pause(true);
    let paused_at = Instant::now();
    while paused_at.elapsed() < Duration::from_secs(5) {
        feed(&mut next, &mut cut, &mut other, 4);
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        other.stderr().contains("shard auto: acquired"),
        "the other replica took nothing over:\n{}",
        other.stderr()
    );
    proxy.pause(false);
    // Back in the group: the buckets are split between the two again.
    let resumed = Instant::now();
    while !split_between(&[&cut, &other]) {
        assert!(
            resumed.elapsed() < PATIENCE,
            "no split after the cut:\n{}\n---\n{}",
            cut.stderr(),
            other.stderr()
        );
        feed(&mut next, &mut cut, &mut other, 4);
        thread::sleep(Duration::from_millis(100));
    }
    // Settled: these are all handled, each once.
    let last = next;
    feed(&mut next, &mut cut, &mut other, 400);
    let all = next;
    let settled = Instant::now();
    loop {
        let handled: HashSet<usize> = starts(&cut.stdout())
            .into_iter()
            .chain(starts(&other.stdout()))
            .map(|start| start.n)
            .filter(|&n| n >= last)
            .collect();
        if handled.len() == all - last {
            break;
        }
        assert!(
            settled.elapsed() < PATIENCE,
            "{} of the {} events after the cut were handled",
            handled.len(),
            all - last
        );
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(500));
    for replica in [&mut cut, &mut other] {
        replica.close_stdin();
        assert_eq!(replica.wait_exit().code(), Some(0), "{}", replica.stderr());
    }

    let (of_cut, of_other) = (starts(&cut.stdout()), starts(&other.stdout()));
    // No event was started twice, by one replica or by both.
    let mut seen = HashMap::new();
    for start in of_cut.iter().chain(&of_other) {
        assert!(
            seen.insert(start.n, *start).is_none(),
            "event {} was handled twice",
            start.n
        );
    }
    assert!((last..all).all(|n| seen.contains_key(&n)));
    // Per bucket, in time order across both replicas, the tokens never go back: an older holder
    // never started a handler after a newer one had.
    let mut by_bucket: BTreeMap<usize, Vec<Start>> = BTreeMap::new();
    for start in of_cut.iter().chain(&of_other) {
        by_bucket.entry(start.bucket).or_default().push(*start);
    }
    let mut moved = 0;
    for (bucket, mut starts) in by_bucket {
        starts.sort_by_key(|start| (start.at, start.token));
        for pair in starts.windows(2) {
            assert!(
                pair[0].token <= pair[1].token,
                "bucket {bucket}: {:?} started after {:?}, a newer holder's",
                pair[1],
                pair[0]
            );
        }
        if starts.first().map(|start| start.token) != starts.last().map(|start| start.token) {
            moved += 1;
        }
    }
    assert!(moved > 0, "no bucket changed hands: the test saw nothing");
    // The cut-off replica handled events of its buckets before the cut, and none of them while
    // the other held them: in the check above.
    assert!(of_cut.iter().any(|start| start.n < 80), "{}", cut.stdout());
}
