//! Real processes sharing one Redis: N `shared_worker` processes lose no update and no locked
//! read-modify-write; a lock holder killed with SIGKILL frees the lock when its lease runs out and
//! the next holder gets a larger fencing token; a holder paused past its lease has its fenced
//! write refused.
#![cfg(feature = "redis")]

mod processes;
#[path = "../../memo-runtime/tests/support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

/// The `shared_worker` example, built once: test binaries are in `target/<profile>/deps`, examples
/// in `target/<profile>/examples`.
fn worker_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| processes::example("shared_worker"))
}

/// A worker with the store's default lease (15 s): long enough that a worker slowed down by a
/// busy machine never loses a lock it holds.
fn worker(server: &RedisServer, bot: &str, args: &[&str]) -> Command {
    let mut command = Command::new(worker_binary());
    command
        .args(args)
        .env("MEMO_REDIS_URL", server.url())
        .env("MEMO_BOT", bot);
    command
}

fn run_all(mut commands: Vec<Command>) {
    let children: Vec<Child> = commands
        .iter_mut()
        .map(|c| c.spawn().expect("spawn a worker"))
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("a worker ran");
        assert!(output.status.success(), "a worker failed: {output:?}");
    }
}

fn get(server: &RedisServer, key: &str) -> String {
    server.command(&["GET", key])
}

/// A `hold` worker that took the lock: the process, its stdout, and its fencing token.
struct Holder {
    child: Child,
    stdout: BufReader<ChildStdout>,
    token: u64,
}

fn hold(server: &RedisServer, bot: &str, value: &str) -> Holder {
    // A 1 s lease: a dead or paused holder frees the lock soon.
    let mut child = worker(server, bot, &["hold", value])
        .env("MEMO_LEASE_MS", "1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a holder");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the holder prints its token");
    let token = line
        .trim()
        .strip_prefix("fencing_token=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Holder { child, stdout, token }
}

impl Holder {
    /// Lets the holder do its fenced write; returns what it printed.
    fn write(mut self) -> String {
        let mut stdin = self.child.stdin.take().expect("piped");
        stdin.write_all(b"go\n").expect("the holder reads stdin");
        drop(stdin);
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("the holder prints the outcome");
        assert!(self.child.wait().expect("the holder exits").success());
        line.trim().to_owned()
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn processes_times_updates_are_exact() {
    let Some(server) = RedisServer::start() else { return };
    const PROCESSES: usize = 4;
    const UPDATES: usize = 200;
    run_all(
        (0..PROCESSES)
            .map(|_| worker(&server, "counting", &["update", &UPDATES.to_string()]))
            .collect(),
    );
    let expected = (PROCESSES * UPDATES).to_string();
    assert_eq!(
        get(&server, "memo:counting:bot:value:n"),
        format!("${}\r\n{expected}\r\n", expected.len())
    );
}

#[test]
fn processes_times_locked_cycles_are_exact() {
    let Some(server) = RedisServer::start() else { return };
    const PROCESSES: usize = 4;
    const CYCLES: usize = 50;
    run_all(
        (0..PROCESSES)
            .map(|_| worker(&server, "locking", &["locked", &CYCLES.to_string()]))
            .collect(),
    );
    let expected = (PROCESSES * CYCLES).to_string();
    assert_eq!(
        get(&server, "memo:locking:bot:value:locked"),
        format!("${}\r\n{expected}\r\n", expected.len())
    );
}

#[test]
fn a_killed_holder_frees_the_lock_when_its_lease_runs_out() {
    let Some(server) = RedisServer::start() else { return };
    let mut dead = hold(&server, "killing", "dead");
    dead.child.kill().expect("SIGKILL");
    dead.child.wait().expect("reaped");

    // Blocks until the dead holder's lease (1 s) runs out.
    let next = hold(&server, "killing", "next");
    assert!(next.token > dead.token, "{} after {}", next.token, dead.token);
    assert_eq!(next.write(), "written");
    assert_eq!(get(&server, "memo:killing:bot:value:config"), "$6\r\n\"next\"\r\n");
}

#[test]
fn a_paused_holder_past_its_lease_has_its_fenced_write_refused() {
    let Some(server) = RedisServer::start() else { return };
    let stale = hold(&server, "pausing", "stale");
    // Paused (as by a long GC or a stalled VM): it cannot renew its lease.
    signal(&stale.child, "STOP");
    let current = hold(&server, "pausing", "current");
    assert!(current.token > stale.token);
    assert_eq!(current.write(), "written");

    // Resumed, it still believes it holds the lock: Redis refuses its write.
    signal(&stale.child, "CONT");
    let outcome = stale.write();
    assert!(
        outcome.starts_with("refused:") && outcome.contains("deploy"),
        "{outcome}"
    );
    assert_eq!(get(&server, "memo:pausing:bot:value:config"), "$9\r\n\"current\"\r\n");
}
