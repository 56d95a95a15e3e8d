//! The `restart_safe` example as real processes, stopped with SIGTERM and started again: against
//! a cluster (the fake API server of the runtime's tests, progress in annotations), and on a
//! watch stream with its progress in a real `redis-server`.

#[cfg(feature = "kube")]
#[path = "../../memo-runtime/tests/support/fake_api.rs"]
mod fake_api;
mod processes;
#[cfg(feature = "redis")]
#[path = "../../memo-runtime/tests/support/redis_server.rs"]
mod redis_server;

use processes::Process;

/// The example's log line for a message of `name`: the handler span, then the message.
fn line(name: &str, message: &str) -> String {
    format!("name={name}}}: memo: {message}")
}

fn count(stderr: &str, needle: &str) -> usize {
    stderr.matches(needle).count()
}

#[cfg(feature = "kube")]
mod cluster {
    use super::{Process, count, line};
    use crate::fake_api::FakeApi;
    use serde_json::json;

    fn kubeconfig(fake: &FakeApi, addr: std::net::SocketAddr) -> String {
        let dir = std::env::temp_dir().join(format!("memo-restart-safe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        fake.kubeconfig(addr, &dir).to_str().expect("UTF-8").to_owned()
    }

    fn stop(mut process: Process) -> String {
        process.signal("TERM");
        let status = process.wait_exit();
        let stderr = process.stderr();
        assert_eq!(status.code(), Some(0), "{stderr}");
        stderr
    }

    #[tokio::test]
    async fn a_restarted_operator_runs_nothing_twice_and_misses_nothing() {
        let fake = FakeApi::new();
        fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
        fake.create("kopfexamples", Some("default"), "e1", json!({"size": 1}));
        fake.create("kopfexamples", Some("default"), "d1", json!({}));
        fake.create("configmaps", Some("default"), "c1", json!({}));
        let addr = fake.listen().await;
        let config = kubeconfig(&fake, addr);
        let env = [("KUBECONFIG", config.as_str())];

        let first = Process::start_plain("restart_safe", &[], &env);
        first.wait_for(&line("e1", "provisioned e1 (retry 0)"));
        first.wait_for(&line("d1", "provisioned d1 (retry 0)"));
        // Recorded, with the finalizer, before the stop.
        for _ in 0..1500 {
            let held = fake
                .object("kopfexamples", Some("default"), "d1")
                .is_some_and(|object| object["metadata"]["finalizers"] == json!(["memo.dev/finalizer"]));
            if held {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let first = stop(first);
        assert_eq!(count(&first, "reattached"), 0, "{first}");
        let config_map = fake.object("configmaps", Some("default"), "c1").expect("c1");
        assert!(
            config_map["metadata"].get("finalizers").is_none(),
            "`optional`: {config_map}"
        );

        // While it is down: a change, a deletion, a new object.
        fake.replace("kopfexamples", Some("default"), "e1", json!({"size": 3}));
        fake.delete("kopfexamples", Some("default"), "d1");
        fake.create("kopfexamples", Some("default"), "e2", json!({}));

        let second = Process::start_plain("restart_safe", &[], &env);
        second.wait_for(&line("e1", "reconfigured e1: Change /spec/size -> 3"));
        second.wait_for(&line("d1", "deprovisioned d1"));
        second.wait_for(&line("e2", "provisioned e2 (retry 0)"));
        second.wait_for(&line("e1", "reattached e1"));
        fake.delete("configmaps", Some("default"), "c1");
        second.wait_for(&line("c1", "forgot c1"));
        for _ in 0..1500 {
            if fake.object("kopfexamples", Some("default"), "d1").is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            fake.object("kopfexamples", Some("default"), "d1").is_none(),
            "the finalizer was removed"
        );
        let second = stop(second);
        assert_eq!(count(&second, "provisioned e1"), 0, "{second}");
        assert_eq!(
            count(&second, "reattached"),
            1,
            "e1 only: d1 was being deleted, e2 is new: {second}"
        );
    }
}

#[cfg(feature = "redis")]
mod stream {
    use super::{Process, count, line};
    use crate::processes::watch_event;
    use crate::redis_server::RedisServer;
    use serde_json::json;

    /// One run reading `events` from its standard input, to their end.
    fn run(url: &str, events: &[String]) -> String {
        let mut process = Process::start(
            "restart_safe",
            &["--redis", url, "--name", "restart-safe", "--progress-store", "shared"],
            &[],
        );
        process.write(&events.concat());
        process.close_stdin();
        let status = process.wait_exit();
        let stderr = process.stderr();
        assert_eq!(status.code(), Some(0), "{stderr}");
        stderr
    }

    #[test]
    fn a_stream_with_its_progress_in_redis_is_restart_safe() {
        let Some(server) = RedisServer::start() else { return };
        let url = server.url();
        let added = watch_event("ADDED", "KopfExample", "s1", json!({"size": 1}));
        let first = run(&url, std::slice::from_ref(&added));
        assert_eq!(count(&first, "provisioned s1"), 1, "{first}");

        // The stream read again from its start, with a change after it: `kubectl --watch` after
        // a restart lists what exists, then watches.
        let changed = watch_event("MODIFIED", "KopfExample", "s1", json!({"size": 2}));
        let second = run(&url, &[added.clone(), changed]);
        assert_eq!(count(&second, "provisioned s1"), 0, "created once: {second}");
        assert_eq!(count(&second, &line("s1", "reattached s1")), 1, "{second}");
        assert_eq!(
            count(&second, &line("s1", "reconfigured s1: Change /spec/size -> 2")),
            1,
            "{second}"
        );

        // The record is in Redis, under the bot's name.
        let keys = server.command(&["KEYS", "memo:restart-safe:*"]);
        assert!(keys.contains("memo.progress"), "{keys}");
    }
}
