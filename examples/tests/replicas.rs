//! Sharded replicas of `message_counter` as real processes on one Redis: three of them split one
//! stream of 30,000 events on 300 resources and count every event exactly once, preparing the
//! shared memory once between them; a replica whose Redis restarts logs the failed calls, recovers
//! without a restart, and exits 0 at the end of its input.
#![cfg(feature = "redis")]

mod processes;
#[path = "../../memo-runtime/tests/support/redis_server.rs"]
mod redis_server;

use processes::{PATIENCE, Process, watch_event};
use redis_server::RedisServer;
use std::time::{Duration, Instant};

/// The value of a shared-memory key of the bot, as `redis-cli GET` shows it.
fn shared_value(server: &RedisServer, bot: &str, key: &str) -> Option<u64> {
    let reply = server.command(&["GET", &format!("memo:{bot}:bot:value:{key}")]);
    // A bulk string: `$LEN\r\nVALUE\r\n`, or `$-1\r\n` for none.
    reply.lines().nth(1).and_then(|value| value.trim().parse().ok())
}

fn stream(resources: usize, events: usize) -> String {
    (0..events)
        .map(|index| {
            let r#type = if index < resources { "ADDED" } else { "MODIFIED" };
            watch_event(
                r#type,
                "KopfExample",
                &format!("ex{}", index % resources),
                serde_json::json!({}),
            )
        })
        .collect()
}

#[test]
fn three_replicas_count_every_event_exactly_once() {
    let Some(server) = RedisServer::start() else { return };
    let file = std::env::temp_dir().join(format!("memo-replicas-{}.json", std::process::id()));
    std::fs::write(&file, stream(300, 30_000)).unwrap();
    let url = server.url();
    let mut replicas: Vec<Process> = (0..3)
        .map(|index| {
            let shard = format!("{index}/3");
            let args = [
                "--source",
                file.to_str().unwrap(),
                "--redis",
                &url,
                "--shard",
                &shard,
                "--name",
                "counting",
                "-q",
            ];
            Process::start("message_counter", &args, &[])
        })
        .collect();
    for replica in &mut replicas {
        let status = replica.wait_exit();
        assert_eq!(status.code(), Some(0), "{}", replica.stderr());
    }
    let _ = std::fs::remove_file(&file);
    assert_eq!(shared_value(&server, "counting", "messages"), Some(30_000));
    let preparations: usize = replicas
        .iter()
        .map(|replica| replica.stdout().matches("preparing the shared memory").count())
        .sum();
    assert_eq!(preparations, 1, "the preparer runs once for the three replicas");
}

#[test]
fn a_replica_rides_out_a_redis_restart() {
    let Some(mut server) = RedisServer::start() else { return };
    let url = server.url();
    let mut replica = Process::start(
        "message_counter",
        &["--redis", &url, "--name", "restart", "--workers", "2"],
        &[],
    );
    let events = |from: usize, count: usize| -> String {
        (from..from + count)
            .map(|index| watch_event("ADDED", "KopfExample", &format!("ex{index}"), serde_json::json!({})))
            .collect()
    };
    replica.write(&events(0, 100));
    let start = Instant::now();
    while shared_value(&server, "restart", "messages") != Some(100) {
        assert!(
            start.elapsed() < PATIENCE,
            "the first 100 events were not counted: {}",
            replica.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    server.stop();
    replica.write(&events(100, 5));
    replica.wait_for("handler `message_counter::increment` failed");

    server.resume();
    // A restarted Redis without persistence is empty: the counter starts over once the replica
    // prepares the memory again. Events keep coming until their counts show up.
    let start = Instant::now();
    let mut next = 105;
    while shared_value(&server, "restart", "messages").is_none_or(|n| n < 10) {
        assert!(
            start.elapsed() < PATIENCE,
            "calls did not succeed again: {}",
            replica.stderr()
        );
        replica.write(&events(next, 5));
        next += 5;
        std::thread::sleep(Duration::from_millis(100));
    }
    replica.close_stdin();
    let status = replica.wait_exit();
    let stderr = replica.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let failure = stderr
        .lines()
        .find(|line| line.contains("handler `message_counter::increment` failed"))
        .expect("the failed calls are logged");
    assert!(failure.contains("KopfExample") && failure.contains("ex10"), "{failure}");
}

#[test]
fn an_unreachable_redis_fails_the_start_naming_the_url() {
    let url = redis_server::unreachable_url();
    let mut replica = Process::start("message_counter", &["--redis", &url], &[]);
    let status = replica.wait_exit();
    let stderr = replica.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let address = url.trim_start_matches("redis://").trim_end_matches('/');
    assert!(stderr.contains(address), "{stderr}");
    assert!(!replica.stdout().contains("preparing"), "no handler ran");
}

/// The components example runs unchanged on Redis: both components' memories and the locked
/// per-name map, with no handler failing.
#[test]
fn components_run_unchanged_on_redis() {
    let Some(server) = RedisServer::start() else { return };
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/kopfexamples.json");
    let url = server.url();
    let mut operator = Process::start(
        "components",
        &["--source", data, "--redis", &url, "--workers", "4"],
        &[],
    );
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let keys = server.command(&["KEYS", "memo:components:component:*"]);
    assert!(keys.contains(":value:"), "the components' values are in Redis: {keys}");
}
