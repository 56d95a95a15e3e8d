//! A Redis password never shows, whatever form of URL carries it: not in `--help`, not in `-vv`
//! logs, not in a connect error, not in the unauthenticated `/metrics`. And a Redis that wants a
//! password, given none, fails the start (exit 1, one line naming the URL) instead of failing
//! every handler later.
#![cfg(feature = "redis")]

mod processes;
#[path = "../../memo-runtime/tests/support/redis_server.rs"]
mod redis_server;

use processes::scrape::get;
use processes::scrape::http_text::sample;
use processes::{PATIENCE, Process, watch_event};
use redis_server::RedisServer;
use serde_json::json;

const SECRET: &str = "S3cretPassw0rd";

/// The address the process logged for its endpoint (it asked for port 0).
fn endpoint(operator: &Process) -> String {
    operator.wait_for("liveness endpoint on http://");
    let stderr = operator.stderr();
    let (_, rest) = stderr.split_once("liveness endpoint on http://").unwrap();
    rest.split_once("/healthz").unwrap().0.to_owned()
}

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "the password shows in {what}:\n{text}");
}

#[test]
fn help_names_the_variable_without_its_value() {
    let url = format!("redis://:{SECRET}@127.0.0.1:6379/");
    let mut help = Process::start_plain("message_counter", &["--help"], &[("MEMO_REDIS_URL", &url)]);
    assert_eq!(help.wait_exit().code(), Some(0));
    let text = help.stdout();
    assert!(text.contains("MEMO_REDIS_URL"), "{text}");
    assert_hidden("--help", &text);
}

/// Runs `message_counter` on `url` with `-vv` and the endpoint: it connects, counts an event,
/// and neither its logs nor its metrics show the password.
fn runs_without_showing(url: &str, bot: &str) {
    let mut operator = Process::start(
        "message_counter",
        &["--redis", url, "-vv", "--liveness", "127.0.0.1:0", "--name", bot],
        &[],
    );
    let address = endpoint(&operator);
    operator.write(&watch_event("ADDED", "KopfExample", "one", json!({})));
    let called = r#"memo_handler_calls_total{handler="message_counter::increment"}"#;
    let start = std::time::Instant::now();
    let metrics = loop {
        let (status, metrics) = get(&address, "/metrics").expect("the endpoint answers");
        assert_eq!(status, 200, "{metrics}");
        if sample(&metrics, called) == Some(1.0) {
            break metrics;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the event was never handled:\n{metrics}\n{}",
            operator.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        metrics.contains("memo_shared_operations_total{store=\"Redis at "),
        "{metrics}"
    );
    assert_hidden("/metrics", &metrics);
    operator.close_stdin();
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("***"), "the URL is shown, redacted: {stderr}");
    assert!(
        operator.stdout().contains("1 messages received in total"),
        "{}",
        operator.stdout()
    );
    assert_hidden("the logs", &stderr);
}

#[test]
fn a_password_in_the_url_stays_hidden_over_tcp_and_a_unix_socket() {
    let Some(server) = RedisServer::start_with(&["--requirepass", SECRET, "--unixsocket", "redis.sock"]) else {
        return;
    };
    let port = server.port();
    runs_without_showing(&format!("redis://:{SECRET}@127.0.0.1:{port}/"), "password");
    runs_without_showing(&format!("redis://default:{SECRET}@127.0.0.1:{port}/0"), "user");
    let socket = server.dir().join("redis.sock");
    runs_without_showing(&format!("redis+unix://{}?pass={SECRET}", socket.display()), "unix");
    runs_without_showing(&format!("unix://{}?db=0&pass={SECRET}", socket.display()), "unix-db");
}

#[test]
fn connect_errors_hide_the_password() {
    let Some(server) = RedisServer::start_with(&["--requirepass", "the-right-one"]) else {
        return;
    };
    let port = server.port();
    let dead = std::env::temp_dir().join("memo-no-such-redis.sock");
    for url in [
        format!("redis://:{SECRET}@127.0.0.1:{port}/"),
        format!("redis://user:{SECRET}@127.0.0.1:{port}/"),
        format!("redis+unix://{}?pass={SECRET}", dead.display()),
        format!("redis+unix://{}?password={SECRET}", dead.display()),
        format!("redis://:{SECRET}@[127.0.0.1/"),
    ] {
        let mut operator = Process::start("message_counter", &["--redis", &url, "-vv"], &[]);
        let status = operator.wait_exit();
        let stderr = operator.stderr();
        assert_eq!(status.code(), Some(1), "{url}: {stderr}");
        assert!(!operator.stdout().contains("preparing"), "no handler ran: {url}");
        assert_hidden(&url, &stderr);
    }
}

#[test]
fn a_redis_that_needs_a_password_given_none_fails_the_start() {
    let Some(server) = RedisServer::start_with(&["--requirepass", SECRET]) else {
        return;
    };
    let url = server.url();
    let mut operator = Process::start("message_counter", &["--redis", &url], &[]);
    operator.write(&watch_event("ADDED", "KopfExample", "one", json!({})));
    let status = operator.wait_exit();
    let stderr = operator.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:") || line.contains("ERROR"))
        .collect();
    assert_eq!(errors.len(), 1, "one line: {stderr}");
    assert!(errors[0].contains(&url) && errors[0].contains("NOAUTH"), "{stderr}");
    assert!(!operator.stdout().contains("preparing"), "no handler ran");
}
