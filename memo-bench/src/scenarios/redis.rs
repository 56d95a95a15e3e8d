//! Measurement 7, shared memory in Redis: `get`, `set`, `update` of one `u64` counter and a
//! `lock` + `get` + `set` cycle through `Shared` on a `RedisStore`, at 1 and 16 concurrent tasks,
//! beside raw redis-rs commands (GET, SET, INCR) at the same concurrency on the same kind of
//! connection, in the same rounds.
//!
//! It starts a `redis-server` of its own on a free loopback port (no persistence) and skips the
//! section, with a notice, if none is installed.

use crate::Config;
use crate::report::{Goal, Report};
use crate::stats::{Samples, grouped, paired_ratios, per_second};
use memo_runtime::store::RedisStore;
use memo_runtime::{Operator, Shared};
use redis::aio::ConnectionManager;
use serde_json::{Map, Value};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const CONCURRENCY: [usize; 2] = [1, 16];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Set,
    Update,
    LockCycle,
}

const OPS: [Op; 4] = [Op::Get, Op::Set, Op::Update, Op::LockCycle];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Update => "update",
            Op::LockCycle => "lock+get+set",
        }
    }

    /// The raw command it is compared with, if any.
    fn raw(self) -> Option<&'static str> {
        match self {
            Op::Get => Some("GET"),
            Op::Set => Some("SET"),
            Op::Update => Some("INCR"),
            Op::LockCycle => None,
        }
    }
}

/// Throughput samples, indexed like `CONCURRENCY`.
#[derive(Default, Clone)]
struct Figures {
    shared: [Samples; 2],
    raw: [Samples; 2],
}

pub fn run(runtime: &Runtime, config: &Config, report: &mut Report) {
    report.section("7. Shared memory in Redis (one u64 counter; every task on the same key; loopback redis-server)");
    let Some(server) = Server::start() else {
        report.row("skipped: redis-server is not installed", "", "");
        return;
    };
    let url = server.url();
    let (shared, raw) = runtime.block_on(async {
        let store = RedisStore::connect(&url)
            .await
            .expect("the bench's redis-server answers");
        let shared = Operator::new().name("memo-bench").store(store).shared();
        let client = redis::Client::open(url.as_str()).expect("a valid URL");
        let raw = ConnectionManager::new(client)
            .await
            .expect("the bench's redis-server answers");
        (shared, raw)
    });
    let mut figures = vec![Figures::default(); OPS.len()];
    for _ in 0..config.rounds {
        for (op, figures) in OPS.iter().zip(&mut figures) {
            let ops = if *op == Op::LockCycle {
                config.redis_lock_ops
            } else {
                config.redis_ops
            };
            for (index, tasks) in CONCURRENCY.into_iter().enumerate() {
                if op.raw().is_some() {
                    figures.raw[index].push(runtime.block_on(with_raw(&raw, *op, tasks, ops)));
                }
                figures.shared[index].push(runtime.block_on(with_shared(&shared, *op, tasks, ops)));
            }
        }
    }

    let mut json = Map::new();
    for (op, figures) in OPS.iter().zip(&figures) {
        add_rows(report, *op, figures);
        json.insert(op.name().to_owned(), figures_json(*op, figures));
    }
    report.row(
        "botogram 0.5 get, 1 worker (reference)",
        "31,000 ops/s",
        "in-process, for scale",
    );
    report.row("botogram 0.5 locked increment (reference)", "6 ops/s", "");
    report.figures("redis", Value::Object(json));

    let at_16 = CONCURRENCY.len() - 1;
    for (op, target) in [(Op::Get, 0.7), (Op::Set, 0.7), (Op::Update, 0.4)] {
        let figures = &figures[OPS.iter().position(|o| *o == op).expect("measured")];
        report.target(
            format!(
                "redis: Shared {} / raw {}, 16 tasks",
                op.name(),
                op.raw().expect("compared")
            ),
            paired_ratios(&figures.shared[at_16], &figures.raw[at_16]).median(),
            Goal::AtLeast,
            target,
        );
    }
    let lock = &figures[OPS.iter().position(|o| *o == Op::LockCycle).expect("measured")];
    report.target(
        "redis: lock+get+set cycles per second, 16 tasks",
        lock.shared[at_16].median(),
        Goal::AtLeast,
        1_000.0,
    );
    drop(server);
}

fn add_rows(report: &mut Report, op: Op, figures: &Figures) {
    for (index, tasks) in CONCURRENCY.into_iter().enumerate() {
        let plural = if tasks == 1 { "" } else { "s" };
        if let Some(raw) = op.raw() {
            report.row(
                format!("raw redis-rs {raw}, {tasks} task{plural}"),
                ops(&figures.raw[index]),
                "baseline",
            );
            report.row(
                format!("Shared {}, {tasks} task{plural}", op.name()),
                ops(&figures.shared[index]),
                format!(
                    "{:.2}x baseline",
                    paired_ratios(&figures.shared[index], &figures.raw[index]).median()
                ),
            );
        } else {
            report.row(
                format!("Shared {}, {tasks} task{plural}", op.name()),
                ops(&figures.shared[index]),
                "",
            );
        }
    }
}

fn ops(samples: &Samples) -> String {
    format!("{} ops/s", grouped(samples.median()))
}

fn figures_json(op: Op, figures: &Figures) -> Value {
    let mut json = Map::new();
    for (index, tasks) in CONCURRENCY.into_iter().enumerate() {
        json.insert(
            format!("shared_{tasks}_task_ops_per_second"),
            figures.shared[index].to_json(),
        );
        if op.raw().is_some() {
            json.insert(format!("raw_{tasks}_task_ops_per_second"), figures.raw[index].to_json());
        }
    }
    Value::Object(json)
}

/// Runs `tasks` tasks of `ops / tasks` operations each and returns the operations per second.
async fn on_tasks<F, Fut>(tasks: usize, ops: usize, work: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let each = ops / tasks;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(work(each))).collect();
    for handle in handles {
        handle.await.expect("a measuring task panicked");
    }
    per_second(each * tasks, start.elapsed())
}

async fn with_shared(shared: &Shared, op: Op, tasks: usize, ops: usize) -> f64 {
    shared.set("counter", 0u64).await.expect("set");
    let throughput = on_tasks(tasks, ops, |each| {
        let shared = shared.clone();
        async move {
            for index in 0..each {
                match op {
                    Op::Get => {
                        std::hint::black_box(shared.get::<u64>("counter").await.expect("get"));
                    }
                    Op::Set => shared.set("counter", index as u64).await.expect("set"),
                    Op::Update => shared.update("counter", |n: &mut u64| *n += 1).await.expect("update"),
                    Op::LockCycle => {
                        let guard = shared.lock("counter-lock").await.expect("lock");
                        let n: u64 = shared.get("counter").await.expect("get").unwrap_or(0);
                        shared.set("counter", n + 1).await.expect("set");
                        guard.release();
                    }
                }
            }
        }
    })
    .await;
    if matches!(op, Op::Update | Op::LockCycle) {
        let total: u64 = shared.get("counter").await.expect("get").expect("the counter");
        assert_eq!(total, (ops / tasks * tasks) as u64, "{} lost updates", op.name());
    }
    throughput
}

async fn with_raw(connection: &ConnectionManager, op: Op, tasks: usize, ops: usize) -> f64 {
    let key = "raw-counter";
    let mut setup = connection.clone();
    redis::cmd("SET")
        .arg(key)
        .arg(0)
        .query_async::<()>(&mut setup)
        .await
        .expect("SET");
    let connection = Arc::new(connection.clone());
    on_tasks(tasks, ops, |each| {
        let mut connection = (*connection).clone();
        async move {
            for index in 0..each {
                match op {
                    Op::Get => {
                        let value: Option<String> = redis::cmd("GET")
                            .arg(key)
                            .query_async(&mut connection)
                            .await
                            .expect("GET");
                        std::hint::black_box(value);
                    }
                    Op::Set => redis::cmd("SET")
                        .arg(key)
                        .arg(index)
                        .query_async::<()>(&mut connection)
                        .await
                        .expect("SET"),
                    Op::Update | Op::LockCycle => {
                        let n: u64 = redis::cmd("INCR")
                            .arg(key)
                            .query_async(&mut connection)
                            .await
                            .expect("INCR");
                        std::hint::black_box(n);
                    }
                }
            }
        }
    })
    .await
}

/// A `redis-server` of the bench's own, killed on drop.
struct Server {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl Server {
    fn start() -> Option<Server> {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .ok()?;
        let dir = std::env::temp_dir().join(format!("memo-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = match Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                eprintln!("NOTICE: cannot start redis-server ({err}): skipping measurement 7");
                return None;
            }
        };
        let server = Server { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping() {
            if Instant::now() > deadline {
                eprintln!("NOTICE: redis-server did not answer: skipping measurement 7");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
