//! The counter example run as a user runs it against a cluster: no `--source`, `KUBECONFIG`
//! pointing at the fake API server of the runtime's tests (over HTTP on loopback).
#![cfg(feature = "kube")]

#[path = "../../memo-runtime/tests/support/fake_api.rs"]
mod fake_api;
mod processes;

use fake_api::FakeApi;
use processes::Process;
use serde_json::json;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("memo-cluster-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// The counter's log line for an event of `name` in `namespace`: the resource from the handler
/// span, then the logger's message.
fn pinged_in(count: u32, namespace: &str, name: &str) -> String {
    format!("kind=KopfExample namespace={namespace} name={name}}}: memo: pinged: {count} event(s) so far")
}

/// The counter's log line for an event of `name` (in namespace `default`).
fn pinged(count: u32, name: &str) -> String {
    pinged_in(count, "default", name)
}

#[tokio::test]
async fn the_counter_watches_the_cluster_of_its_kubeconfig() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.create("kopfexamples", Some("default"), "ex1", json!({"duration": "1m"}));
    fake.create("kopfexamples", Some("default"), "ex2", json!({}));
    let addr = fake.listen().await;
    let kubeconfig = fake.kubeconfig(addr, &temp_dir("counter"));
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");

    let mut counter = Process::start_plain("counter", &["--workers", "2"], &[("KUBECONFIG", kubeconfig)]);
    counter.wait_for(&pinged(1, "ex1"));
    counter.wait_for(&pinged(1, "ex2"));
    fake.replace("kopfexamples", Some("default"), "ex1", json!({"duration": "2m"}));
    fake.create("kopfexamples", Some("default"), "ex3", json!({}));
    counter.wait_for(&pinged(1, "ex3"));

    counter.signal("TERM");
    let status = counter.wait_exit();
    let stderr = counter.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("watching kopfexamples.kopf.dev in all namespaces"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped: SIGTERM received"), "{stderr}");
    assert!(!stderr.contains(&pinged(2, "ex2")), "{stderr}");
}

#[tokio::test]
async fn namespaces_given_on_the_command_line_are_the_ones_watched() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake.create("kopfexamples", Some("default"), "elsewhere", json!({}));
    fake.create("kopfexamples", Some("staging"), "here", json!({}));
    let addr = fake.listen().await;
    let kubeconfig = fake.kubeconfig(addr, &temp_dir("namespaces"));
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");

    let mut counter = Process::start_plain("counter", &["--namespace", "staging"], &[("KUBECONFIG", kubeconfig)]);
    counter.wait_for(&pinged_in(1, "staging", "here"));
    fake.create("kopfexamples", Some("staging"), "sentinel", json!({}));
    counter.wait_for("name=sentinel}");
    counter.signal("TERM");
    let status = counter.wait_exit();
    let stderr = counter.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("watching kopfexamples.kopf.dev in namespace staging"),
        "{stderr}"
    );
    assert!(!stderr.contains("elsewhere"), "{stderr}");
}

#[test]
fn an_unreachable_cluster_fails_the_start() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("unreachable");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             users:\n- name: gone\n  user: {{}}\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: gone\n\
             current-context: gone\n"
        ),
    )
    .unwrap();
    let mut counter = Process::start_plain("counter", &[], &[("KUBECONFIG", kubeconfig.to_str().unwrap())]);
    let status = counter.wait_exit();
    let stderr = counter.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: kubernetes: API discovery failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
