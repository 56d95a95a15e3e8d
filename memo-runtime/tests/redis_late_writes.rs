//! A write whose connection died before Redis read it can never land later: the store's
//! question about it kills that connection on the server first. A TCP proxy between the store
//! and a real `redis-server` holds a write's bytes, cuts the store's side of the connection (the
//! store sees it drop), and delivers the held bytes only after the store has answered and moved
//! on, as a congested network or a paused server would.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use memo_runtime::prelude::*;
use memo_runtime::store::RedisStore;
use redis_server::RedisServer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

/// One proxied connection.
struct Pipe {
    /// Bytes from the store held back instead of forwarded (while `holding`).
    held: Mutex<Vec<u8>>,
    holding: AtomicBool,
    to_server: tokio::sync::Mutex<OwnedWriteHalf>,
    to_client: Mutex<Option<OwnedWriteHalf>>,
    from_client: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when the server closed its side.
    server_closed: AtomicBool,
}

#[derive(Default)]
struct Proxy {
    pipes: Mutex<Vec<Arc<Pipe>>>,
}

impl Proxy {
    async fn start(server: &str) -> (Arc<Proxy>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}/", listener.local_addr().unwrap());
        let proxy = Arc::new(Proxy::default());
        let (accepting, server) = (Arc::clone(&proxy), server.to_owned());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(&server).await.unwrap();
                let (mut client_read, client_write) = client.into_split();
                let (mut server_read, server_write) = upstream.into_split();
                let pipe = Arc::new(Pipe {
                    held: Mutex::new(Vec::new()),
                    holding: AtomicBool::new(false),
                    to_server: tokio::sync::Mutex::new(server_write),
                    to_client: Mutex::new(Some(client_write)),
                    from_client: Mutex::new(None),
                    server_closed: AtomicBool::new(false),
                });
                let forward = Arc::clone(&pipe);
                let from_client = tokio::spawn(async move {
                    let mut buffer = vec![0; 16 * 1024];
                    while let Ok(read @ 1..) = client_read.read(&mut buffer).await {
                        if forward.holding.load(Ordering::SeqCst) {
                            forward.held.lock().unwrap().extend_from_slice(&buffer[..read]);
                        } else if forward.to_server.lock().await.write_all(&buffer[..read]).await.is_err() {
                            return;
                        }
                    }
                });
                *pipe.from_client.lock().unwrap() = Some(from_client);
                let back = Arc::clone(&pipe);
                tokio::spawn(async move {
                    let mut buffer = vec![0; 16 * 1024];
                    while let Ok(read @ 1..) = server_read.read(&mut buffer).await {
                        let writer = back.to_client.lock().unwrap().take();
                        if let Some(mut writer) = writer {
                            let _ = writer.write_all(&buffer[..read]).await;
                            back.to_client.lock().unwrap().get_or_insert(writer);
                        }
                    }
                    back.server_closed.store(true, Ordering::SeqCst);
                });
                accepting.pipes.lock().unwrap().push(pipe);
            }
        });
        (proxy, url)
    }

    fn pipes(&self) -> Vec<Arc<Pipe>> {
        self.pipes.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_on_a_dead_connection_never_lands_after_the_answer() {
    let Some(server) = RedisServer::start() else { return };
    let (proxy, url) = Proxy::start(server.url().trim_start_matches("redis://").trim_end_matches('/')).await;
    let store = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let shared = Operator::new().name("late").store(store).shared();
    shared.set("k", 0u64).await.unwrap();

    let [old] = proxy.pipes().try_into().map_err(|_| "one connection").unwrap();
    old.holding.store(true, Ordering::SeqCst);
    let writer = shared.clone();
    let write = tokio::spawn(async move { writer.set("k", 1u64).await });
    while old.held.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The store's side of the connection drops; Redis's side stays open, its write unread.
    if let Some(handle) = old.from_client.lock().unwrap().take() {
        handle.abort();
    }
    drop(old.to_client.lock().unwrap().take());

    write
        .await
        .unwrap()
        .expect("the write is found not applied and sent again");
    assert_eq!(shared.get::<u64>("k").await.unwrap(), Some(1));
    shared.set("k", 2u64).await.unwrap();

    // The held bytes arrive now, on the old connection: the late write must not land.
    let held = std::mem::take(&mut *old.held.lock().unwrap());
    let _ = old.to_server.lock().await.write_all(&held).await;
    for _ in 0..100 {
        if old.server_closed.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        shared.get::<u64>("k").await.unwrap(),
        Some(2),
        "a write from the dead connection landed after the store had answered"
    );
    assert!(
        old.server_closed.load(Ordering::SeqCst),
        "Redis closed the old connection (killed by the store's question)"
    );
}
