//! `--shard auto` as real processes on a real `redis-server`: replicas of `message_counter` that
//! split the buckets through leases, count every event of one stream (fed to each) exactly once,
//! take over the buckets of one killed with `kill -9`, give a joining one its share, and take
//! those of one stopped with SIGTERM at once.
#![cfg(feature = "redis")]

mod processes;
#[path = "../../memo-runtime/tests/support/redis_server.rs"]
mod redis_server;

use processes::{PATIENCE, Process, owning, split_between, watch_event};
use redis_server::RedisServer;
use std::time::{Duration, Instant};

fn shared_value(server: &RedisServer, bot: &str, key: &str) -> Option<u64> {
    let reply = server.command(&["GET", &format!("memo:{bot}:bot:value:{key}")]);
    reply.lines().nth(1).and_then(|value| value.trim().parse().ok())
}

/// `events` events over 100 resources, as `kubectl --watch` prints them.
fn batch(first: usize, events: usize) -> String {
    (first..first + events)
        .map(|index| {
            let r#type = if index < 100 { "ADDED" } else { "MODIFIED" };
            watch_event(
                r#type,
                "KopfExample",
                &format!("ex{}", index % 100),
                serde_json::json!({"n": index}),
            )
        })
        .collect()
}

fn replica(url: &str) -> Process {
    Process::start(
        "message_counter",
        &[
            "--redis",
            url,
            "--name",
            "auto",
            "--shard",
            "auto",
            "--lease-duration",
            "2s",
        ],
        &[],
    )
}

/// Waits until the `live` replicas own every bucket between them, each seeing them all.
fn wait_for_split(replicas: &[&Process]) {
    let started = Instant::now();
    loop {
        if split_between(replicas) {
            return;
        }
        let states: Vec<Option<(usize, usize)>> = replicas.iter().map(|replica| owning(&replica.stderr())).collect();
        assert!(
            started.elapsed() < PATIENCE * 2,
            "the buckets were not split between {} replicas: {states:?}\n{}",
            replicas.len(),
            replicas
                .iter()
                .map(|replica| {
                    let stderr = replica.stderr();
                    let lines: Vec<&str> = stderr.lines().filter(|line| line.contains("shard auto")).collect();
                    lines[lines.len().saturating_sub(12)..].join("\n")
                })
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_count(server: &RedisServer, expected: u64) {
    let started = Instant::now();
    while shared_value(server, "auto", "messages") != Some(expected) {
        assert!(
            started.elapsed() < PATIENCE,
            "counted {:?}, expected {expected}",
            shared_value(server, "auto", "messages")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nothing more comes: no event was handled twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(shared_value(server, "auto", "messages"), Some(expected));
}

#[test]
fn replicas_share_the_buckets_through_leases_and_take_over_from_one_that_goes() {
    let Some(server) = RedisServer::start() else { return };
    let url = server.url();
    let mut replicas: Vec<Process> = (0..3).map(|_| replica(&url)).collect();
    wait_for_split(&replicas.iter().collect::<Vec<_>>());

    // One stream, fed to each replica: every event counted once.
    let first = batch(0, 3000);
    for replica in &mut replicas {
        replica.write(&first);
    }
    wait_for_count(&server, 3000);

    // One killed outright: the others take its buckets over when its leases expire.
    let killed = replicas.remove(2);
    killed.signal("KILL");
    wait_for_split(&replicas.iter().collect::<Vec<_>>());
    let second = batch(3000, 3000);
    for replica in &mut replicas {
        replica.write(&second);
    }
    wait_for_count(&server, 6000);

    // A new one joins and gets its share.
    replicas.push(replica(&url));
    wait_for_split(&replicas.iter().collect::<Vec<_>>());
    let third = batch(6000, 3000);
    for replica in &mut replicas {
        replica.write(&third);
    }
    wait_for_count(&server, 9000);

    // One stopped with SIGTERM hands its buckets over as it leaves.
    let mut stopped = replicas.remove(0);
    stopped.signal("TERM");
    assert_eq!(stopped.wait_exit().code(), Some(0), "{}", stopped.stderr());
    assert!(
        stopped.stderr().contains("shard auto: left the group, handing over"),
        "{}",
        stopped.stderr()
    );
    wait_for_split(&replicas.iter().collect::<Vec<_>>());
    let fourth = batch(9000, 3000);
    for replica in &mut replicas {
        replica.write(&fourth);
    }
    wait_for_count(&server, 12_000);

    for replica in &mut replicas {
        replica.close_stdin();
        let status = replica.wait_exit();
        assert_eq!(status.code(), Some(0), "{}", replica.stderr());
    }
}

#[test]
fn a_replica_paused_past_its_leases_handles_nothing_of_what_it_lost() {
    let Some(server) = RedisServer::start() else { return };
    let url = server.url();
    let mut replicas: Vec<Process> = (0..2).map(|_| replica(&url)).collect();
    wait_for_split(&replicas.iter().collect::<Vec<_>>());
    let first = batch(0, 1000);
    for replica in &mut replicas {
        replica.write(&first);
    }
    wait_for_count(&server, 1000);

    // Paused for longer than its leases: the other takes every bucket over.
    replicas[0].signal("STOP");
    wait_for_split(&[&replicas[1]]);
    // Written to both while one is paused (few enough to fit its pipe): the paused one reads
    // them when it wakes up, and by then its leases are gone. It must handle none of them, even
    // before its keeper runs again.
    let second = batch(1000, 250);
    for replica in &mut replicas {
        replica.write(&second);
    }
    replicas[0].signal("CONT");
    wait_for_count(&server, 1250);
    // It comes back into the group and gets its share again.
    wait_for_split(&replicas.iter().collect::<Vec<_>>());
    let third = batch(1250, 1000);
    for replica in &mut replicas {
        replica.write(&third);
    }
    wait_for_count(&server, 2250);
    for replica in &mut replicas {
        replica.close_stdin();
        assert_eq!(replica.wait_exit().code(), Some(0), "{}", replica.stderr());
    }
}
