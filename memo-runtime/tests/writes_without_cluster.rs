//! Handlers that ask for `patch` and `client` on an operator that does not watch a cluster: a
//! `client` needs one to start (`M0005`) or `Operator::client`; a patch has nowhere to go and
//! is logged as dropped, once per handler. (Its own test binary: it captures `tracing` output.)
#![cfg(feature = "kube")]

mod common;
#[path = "support/fake_api.rs"]
mod fake_api;

use common::{capture_logs, entries, example, log_in, push};
use memo_runtime::prelude::*;

#[handler(create = "KopfExample")]
fn created(memo: &mut Memo, name: &str, patch: &mut Patch, recorder: &Recorder) {
    patch.set("/status/phase", "Created");
    recorder.info("Created", format!("{name} is set up"));
    push(memo, format!("created {name}"));
}

#[handler(startup)]
async fn connect(memo: &mut Memo, client: &memo_runtime::kube::Client) -> memo_runtime::Result<()> {
    use memo_runtime::k8s_openapi::api::core::v1::ConfigMap;
    let listed = memo_runtime::kube::Api::<ConfigMap>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .map_err(|err| Error::custom(format!("cannot list: {err}")))?;
    push(memo, format!("listed {}", listed.items.len()));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn client_needs_a_cluster_or_a_client_of_the_operators_own_and_patches_are_dropped_once() {
    let (_events, source) = memo_runtime::source::channel(1);
    let err = Operator::new()
        .handle_signals(false)
        .source(source)
        .run()
        .await
        .unwrap_err();
    let Error::Startup(problems) = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code(), "M0005");
    assert!(
        problems[0]
            .message()
            .contains("handler `writes_without_cluster::connect`")
            && problems[0].message().contains("Operator::client"),
        "{}",
        problems[0].message()
    );

    let (_guard, logs) = capture_logs();
    let fake = fake_api::FakeApi::new();
    let mut memo = Memo::new();
    let log = log_in(&mut memo);
    let (events, source) = memo_runtime::source::channel(4);
    let operator = Operator::new()
        .memo(memo)
        .client(fake.client())
        .handle_signals(false)
        .source(source);
    let running = tokio::spawn(operator.run());
    for (name, uid) in [("e1", "u-1"), ("e2", "u-2")] {
        events.send(Event::added(example(name, uid))).await.unwrap();
    }
    drop(events);
    running.await.unwrap().unwrap();
    assert_eq!(entries(&log), ["listed 0", "created e1", "created e2"]);
    let lines = entries(&logs);
    let dropped: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("the patch is dropped"))
        .collect();
    assert_eq!(dropped.len(), 1, "once for the handler, not per event: {lines:#?}");
    assert!(
        dropped[0].contains("handler `writes_without_cluster::created` patched its object")
            && dropped[0].contains("name=\"e1\""),
        "{}",
        dropped[0]
    );
    // Without a cluster the recorder's notes are logged.
    assert!(
        lines.iter().any(|line| line.contains("event: Created: e2 is set up")),
        "{lines:#?}"
    );
}
