//! A kind the cluster does not serve stops the Kubernetes source before anything is watched,
//! naming every such handler with its location (its own binary: these handlers would fail the
//! other tests' discovery).
#![cfg(feature = "kube")]

#[path = "support/fake_api.rs"]
mod fake_api;

use fake_api::FakeApi;
use memo_runtime::prelude::*;

#[handler(event = "KopfExample")]
fn fine() {}

#[handler(event = "kopfexampels")]
fn misspelled() {}

#[handler(timer = "widgets.kopf.dev", interval = 5)]
fn unserved() {}

#[tokio::test]
async fn unknown_kinds_fail_before_any_watch_naming_handler_and_location() {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    let err = memo_runtime::source::kubernetes(fake.client(), Vec::<String>::new())
        .await
        .expect_err("two kinds are not served");
    let Error::UnknownKinds(unknown) = &err else {
        panic!("expected UnknownKinds, got {err}");
    };
    let mut unknown = unknown.clone();
    unknown.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(unknown.len(), 2, "{err}");

    assert_eq!(unknown[0].kind, "kopfexampels");
    assert!(unknown[0].handler.ends_with("misspelled"), "{err}");
    assert!(unknown[0].location.ends_with("kube_unknown_kind.rs:16:1"), "{err}");
    assert_eq!(unknown[0].suggestion.as_deref(), Some("kopfexamples"));

    assert_eq!(unknown[1].kind, "widgets.kopf.dev");
    assert!(unknown[1].handler.ends_with("unserved"), "{err}");
    assert!(unknown[1].location.ends_with("kube_unknown_kind.rs:19:1"), "{err}");
    assert_eq!(unknown[1].suggestion, None);

    let message = err.to_string();
    assert!(message.contains("2 unknown kind(s)"), "{message}");
    assert!(
        message.contains("selects `kopfexampels`, which the cluster does not serve; did you mean `kopfexamples`?"),
        "{message}"
    );
    assert_eq!(err.exit_code(), 1);
    // Discovery only: nothing was listed or watched.
    let requests = fake.requests();
    assert!(!requests.iter().any(|r| r.contains("/kopfexamples")), "{requests:#?}");
}
