//! The liveness endpoint under clients that connect and never finish a request: the probe still
//! gets its answer, and the connections are closed, their file descriptors given back.
//!
//! Alone in its binary: it counts the process's open files, which other tests would change.
#![cfg(target_os = "linux")]

// Not every helper is used here.
#[allow(unused_imports)]
#[path = "support/scrape.rs"]
mod scrape;

use memo_runtime::prelude::*;
use scrape::{free_address, get, wait_for};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// As many half-open connections as issue 17 saw hold an endpoint: past its 64 connections, and
/// past a default soft limit of 1,024 open files with the server's ends.
const HALF_OPEN: usize = 1_000;

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// The number of open files once it stays put for a moment: the last connection of a probe may
/// still be closing on the server's side.
async fn settled_open_files() -> usize {
    let mut last = open_files();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = open_files();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_neither_lock_out_the_probe_nor_keep_their_files() {
    // The clients' ends are in this process too: a thousand of them, and up to 64 of the server's.
    let limit = rlimit::increase_nofile_limit(4 * HALF_OPEN as u64).expect("the open-file limit");
    assert!(
        limit >= 2 * HALF_OPEN as u64,
        "this test needs {} open files; the hard limit is {limit} (`ulimit -Hn`)",
        2 * HALF_OPEN
    );

    let address = free_address();
    let (events, source) = memo_runtime::source::channel(1);
    let run = tokio::spawn(
        Operator::new()
            .handle_signals(false)
            .liveness(&address)
            .source(source)
            .run(),
    );
    wait_for(&address, "/healthz", "a healthy operator", |status, _| status == 200).await;
    let before = settled_open_files().await;

    let mut clients = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        let mut client = TcpStream::connect(&address).await.expect("a connection");
        // Without the blank line that ends a header.
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a header sent");
        clients.push(client);
    }

    // Connecting may be refused while the server makes room; answering may not take long.
    let mut answer = None;
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(1), get(&address, "/healthz")).await {
            Ok(Ok(response)) => {
                answer = Some(response);
                break;
            }
            Ok(Err(err)) => eprintln!("asking /healthz again: {err}"),
            Err(_) => panic!("/healthz did not answer within 1 s with {HALF_OPEN} half-open connections"),
        }
    }
    let (status, body) = answer.expect("/healthz answers");
    assert_eq!(status, 200, "{body}");

    // The server closes every one: some to make room, the rest when their header is late.
    let deadline = Instant::now() + Duration::from_secs(20);
    for (index, client) in clients.iter_mut().enumerate() {
        let mut rest = Vec::new();
        match tokio::time::timeout_at(deadline, client.read_to_end(&mut rest)).await {
            // The end of the stream, after an error response or not, or a reset.
            Ok(Ok(_) | Err(_)) => {}
            Err(_) => panic!("half-open connection {index} of {HALF_OPEN} still open after 20 s"),
        }
    }
    drop(clients);

    let mut now = open_files();
    while now > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = open_files();
    }
    assert!(
        now <= before,
        "{before} files open before the clients, {now} after they were closed"
    );

    drop(events);
    run.await.unwrap().expect("the run ends cleanly");
}
