//! A `redis-server` of a test's own: a free loopback port, no persistence, its own directory,
//! killed on drop. Without `redis-server` installed the tests that need it are skipped with a
//! notice, except under CI (env `CI` set), where that is a failure.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// More `redis-server` arguments (`--requirepass`, `--unixsocket`).
    extra: Vec<String>,
}

/// The program to run: `$REDIS_SERVER`, or `redis-server` from the `PATH`.
fn program() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

impl RedisServer {
    /// A new server, answering PING; `None` (after a printed notice) if `redis-server` is not
    /// installed and this is not CI.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// A new server started with more arguments, such as `["--requirepass", "pw"]`.
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        let installed = Command::new(program())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            if std::env::var_os("CI").is_some() {
                panic!("`{}` is not installed, and CI needs the Redis tests to run", program());
            }
            eprintln!("NOTICE: `{}` is not installed: skipping this Redis test", program());
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("memo-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot make the server's directory");
        let mut server = RedisServer {
            port,
            dir,
            child: None,
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
        };
        server.resume();
        Some(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own directory (for a Unix socket of its own).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Pauses the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("`kill` is available");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing) and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let child = Command::new(program())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never answered PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        // A server that wants a password answers too, with NOAUTH.
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || &reply == b"-NOAUTH")
    }

    /// Runs one command with a raw connection (arguments as given) and returns the reply's text.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("the server is running");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("send");
        let mut reply = Vec::new();
        let mut buffer = [0u8; 4096];
        // Replies here are small: one read after the first bytes arrive is enough, but a bulk
        // string's header and body may come apart, so read until the reply is complete.
        loop {
            let n = stream.read(&mut buffer).expect("read");
            reply.extend_from_slice(&buffer[..n]);
            if n == 0 || complete(&reply) {
                break;
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    }
}

fn complete(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    match text.strip_prefix('$') {
        Some(rest) => match rest.split_once("\r\n") {
            Some((len, body)) => match len.parse::<i64>() {
                Ok(len) if len < 0 => true,
                Ok(len) => body.len() >= len as usize + 2,
                Err(_) => true,
            },
            None => false,
        },
        None => text.ends_with("\r\n"),
    }
}

/// A Redis URL on a free loopback port where nothing listens: what connecting to a dead server
/// looks like.
pub fn unreachable_url() -> String {
    format!("redis://127.0.0.1:{}/", free_port())
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free loopback port")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
