//! Measurement 4's per-process figures for `--shard`: one replica of N in a process of its own
//! (this binary, started again with `--replica-process`), reading one kubectl-style JSON stream
//! of `ADDED` events for new resources through the runtime's own stream source, keeping its
//! share. It reports how much its resident set (`VmRSS`) and its CPU time (user + system, all
//! threads) grew from before the operator started to when its share was handled.
//!
//! The stream is generated as it is read, so that no event exists before it is needed: the
//! resident set then holds what the operator keeps, plus the allocator's own slack.

use crate::handlers;
use memo_runtime::Operator;
use std::io::Read;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// What one replica process measured, per watched object.
#[derive(Clone, Copy, Debug)]
pub struct PerObject {
    pub rss_bytes: f64,
    pub cpu_nanos: f64,
}

/// Runs replica 0 of `count` (`count == 0`: a replica that owns nothing, the cost of reading
/// the stream alone) in a process of its own over `resources` resources.
pub fn measure(resources: usize, count: u64) -> PerObject {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let output = Command::new(exe)
        .args(["--replica-process", &count.to_string(), &resources.to_string()])
        .output()
        .expect("the bench can start itself");
    assert!(
        output.status.success(),
        "the replica process failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let figures: serde_json::Value = serde_json::from_str(text.trim()).expect("the replica process prints JSON");
    let field = |name: &str| figures[name].as_f64().expect("a figure") / resources as f64;
    PerObject {
        rss_bytes: field("rss_bytes"),
        cpu_nanos: field("cpu_nanos"),
    }
}

/// The replica process: prints `{"rss_bytes": …, "cpu_nanos": …}` and exits.
pub fn child_main(count: u64, resources: usize) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    // Replica 0 of `count`; of `u64::MAX` it owns (almost surely) nothing.
    let shard = memo_runtime::shard::Shard::new(0, if count == 0 { u64::MAX } else { count }).expect("a shard");
    let mine = (0..resources).filter(|index| shard.owns(&uid(*index))).count();
    handlers::expect(1);
    let (hold, held) = mpsc::channel::<()>();
    let (read_all, all_read) = mpsc::channel();
    let stream = Stream {
        resources,
        next: 0,
        line: Vec::new(),
        at: 0,
        held: Some(held),
        read_all: Some(read_all),
    };
    let (rss_before, cpu_before) = (rss_bytes(), cpu_nanos());
    runtime.block_on(async {
        let operator = Operator::new()
            .handle_signals(false)
            .shard(shard.index(), shard.count())
            .source(memo_runtime::source::json_reader(stream));
        tokio::spawn(operator.run());
        // Every event read, and this replica's share handled.
        let mut read = false;
        while !read || handlers::events_seen() < mine {
            read = read || all_read.try_recv().is_ok();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Let the last events read but not this replica's pass the lane.
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    let (rss_after, cpu_after) = (rss_bytes(), cpu_nanos());
    println!(
        "{}",
        serde_json::json!({
            "rss_bytes": rss_after.saturating_sub(rss_before),
            "cpu_nanos": cpu_after.saturating_sub(cpu_before),
            "mine": mine,
        })
    );
    drop(hold);
    std::process::exit(0)
}

fn uid(index: usize) -> String {
    format!("uid-{}-{index}", handlers::KEEP)
}

/// `ADDED` events of new `Keep` resources as `kubectl --watch -o json` prints them, one a line,
/// made as they are read; then silence (the source stays open, the operator keeps its state).
struct Stream {
    resources: usize,
    next: usize,
    line: Vec<u8>,
    at: usize,
    held: Option<mpsc::Receiver<()>>,
    read_all: Option<mpsc::Sender<()>>,
}

impl Read for Stream {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < buffer.len() {
            if self.at == self.line.len() {
                if self.next == self.resources {
                    break;
                }
                let index = self.next;
                self.next += 1;
                self.line.clear();
                self.line.extend_from_slice(
                    format!(
                        "{{\"type\":\"ADDED\",\"object\":{{\"apiVersion\":\"memo.dev/v1\",\"kind\":\"{}\",\
                         \"metadata\":{{\"name\":\"res-{index}\",\"namespace\":\"default\",\"uid\":\"{}\"}}}}}}\n",
                        handlers::KEEP,
                        uid(index)
                    )
                    .as_bytes(),
                );
                self.at = 0;
            }
            let take = (self.line.len() - self.at).min(buffer.len() - written);
            buffer[written..written + take].copy_from_slice(&self.line[self.at..self.at + take]);
            self.at += take;
            written += take;
        }
        if written == 0 {
            if let Some(read_all) = self.read_all.take() {
                let _ = read_all.send(());
            }
            // Silent until the process ends: the end of the input would end the operator.
            if let Some(held) = self.held.take() {
                let _ = held.recv();
            }
        }
        Ok(written)
    }
}

/// The resident set, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// User and system CPU time of every thread, from `/proc/self/stat` (in units of `USER_HZ`,
/// 100 per second on Linux).
fn cpu_nanos() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which may hold spaces: utime and stime are the 12th
    // and 13th after its closing parenthesis.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10_000_000
}
