//! Example binaries run as real processes: spawned with arguments and a standard input, sent
//! signals with `kill`, their output collected as it comes.
#![allow(dead_code)]

pub mod scrape;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest wait for anything a test expects of a process: far above what it needs, so that only
/// a hang fails a test.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The path of an example binary, built (once per test binary) with this test's features:
/// `cargo test --test NAME` builds no examples, and an example built earlier may be stale.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|done| done == name) {
        let mut command = Command::new(env!("CARGO"));
        command.args(["build", "-p", "memo-examples", "--example", name]);
        // What `cargo test` sets for the test binary is not the environment of a build: a build
        // script that reads `CARGO_MANIFEST_DIR` (ring's) would be rerun, and everything above
        // it rebuilt, once per test binary.
        for (variable, _) in std::env::vars_os() {
            let text = variable.to_string_lossy();
            if [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .iter()
            .any(|prefix| text.starts_with(prefix))
            {
                command.env_remove(&variable);
            }
        }
        let features: Vec<&str> = [("redis", cfg!(feature = "redis")), ("kube", cfg!(feature = "kube"))]
            .into_iter()
            .filter_map(|(feature, on)| on.then_some(feature))
            .collect();
        if !features.is_empty() {
            command.args(["--features", &features.join(",")]);
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the `{name}` example failed");
        built.push(name.to_owned());
    }
    let test_binary = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

/// A running example.
pub struct Process {
    child: Child,
    pub stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `example` with `args`, reading its events from its standard input, a pipe the test
    /// holds (`stdin`), unless `args` give another `--source`.
    pub fn start(example_name: &str, args: &[&str], envs: &[(&str, &str)]) -> Process {
        let mut with_source = Vec::new();
        if !args
            .iter()
            .any(|arg| *arg == "--source" || arg.starts_with("--source="))
        {
            with_source.extend(["--source", "-"]);
        }
        with_source.extend_from_slice(args);
        Process::start_plain(example_name, &with_source, envs)
    }

    /// Starts `example` with exactly `args` (without `--source`, an operator watches the cluster
    /// that `KUBECONFIG` in `envs` names).
    pub fn start_plain(example_name: &str, args: &[&str], envs: &[(&str, &str)]) -> Process {
        let mut child = Command::new(example(example_name))
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        Process {
            stdin: child.stdin.take(),
            child,
            stderr,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn write(&mut self, text: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(text.as_bytes()).expect("the example reads its input");
        stdin.flush().expect("the example reads its input");
    }

    /// Closes standard input: the end of the source.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("`kill` is available");
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits until standard error holds `needle`; panics with the output after [`PATIENCE`].
    pub fn wait_for(&self, needle: &str) {
        let start = Instant::now();
        while !self.stderr().contains(needle) {
            assert!(
                start.elapsed() < PATIENCE,
                "`{needle}` never appeared; stderr so far:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; panics (after killing it) if it does not within [`PATIENCE`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                // Let the readers take the last output.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("the process did not exit; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// One watch event as `kubectl --watch -o json` prints it, on one line.
pub fn watch_event(r#type: &str, kind: &str, name: &str, spec: serde_json::Value) -> String {
    let event = serde_json::json!({
        "type": r#type,
        "object": {
            "apiVersion": "memo.dev/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": spec,
        }
    });
    format!("{event}\n")
}

/// What a `--shard auto` replica says it owns last: (buckets, members), from its "owning" line.
pub fn owning(stderr: &str) -> Option<(usize, usize)> {
    let line = stderr.lines().rfind(|line| line.contains("shard auto: owning"))?;
    let after = line.split("shard auto: owning ").nth(1)?;
    let buckets = after.split(' ').next()?.parse().ok()?;
    let members = after.split(", ").nth(1)?.split(' ').next()?.parse().ok()?;
    Some((buckets, members))
}

/// Whether `replicas` own all 256 buckets between them, each seeing them all as members.
pub fn split_between(replicas: &[&Process]) -> bool {
    let states: Vec<Option<(usize, usize)>> = replicas.iter().map(|replica| owning(&replica.stderr())).collect();
    states
        .iter()
        .all(|state| state.is_some_and(|(_, members)| members == replicas.len()))
        && states
            .iter()
            .map(|state| state.map_or(0, |(buckets, _)| buckets))
            .sum::<usize>()
            == 256
}
