//! The fake Kubernetes API server of the tests (support/fake_api.rs), checked with the real kube
//! client: discovery, LIST, watcher (changes, dropped watches, outages, expired histories,
//! failures), over both transports.
#![cfg(feature = "kube")]

#[path = "support/fake_api.rs"]
mod fake_api;

use std::future::poll_fn;
use std::path::PathBuf;
use std::pin::Pin;

use fake_api::FakeApi;
use futures_core::Stream;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

type Watcher = Pin<Box<dyn Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send>>;

fn kopf_examples() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample"), "kopfexamples")
}

fn fake_with_examples() -> FakeApi {
    let fake = FakeApi::new();
    fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
    fake
}

fn watch_all(client: kube::Client, resource: &ApiResource) -> Watcher {
    Box::pin(watcher::watcher(
        Api::<DynamicObject>::all_with(client, resource),
        watcher::Config::default(),
    ))
}

/// The next event, which must not be an error; as (what, name).
async fn next_event(watcher: &mut Watcher) -> (&'static str, String) {
    match next(watcher).await.expect("watcher ended").expect("watcher error") {
        Event::Init => ("Init", String::new()),
        Event::InitApply(o) => ("InitApply", o.name_any()),
        Event::InitDone => ("InitDone", String::new()),
        Event::Apply(o) => ("Apply", o.name_any()),
        Event::Delete(o) => ("Delete", o.name_any()),
    }
}

async fn expect_initial(watcher: &mut Watcher, names: &[&str]) {
    assert_eq!(next_event(watcher).await, ("Init", String::new()));
    for name in names {
        assert_eq!(next_event(watcher).await, ("InitApply", (*name).to_owned()));
    }
    assert_eq!(next_event(watcher).await, ("InitDone", String::new()));
}

async fn expect_error(watcher: &mut Watcher) -> watcher::Error {
    match next(watcher).await.expect("watcher ended") {
        Err(e) => e,
        Ok(event) => panic!("expected an error, got {event:?}"),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memo-fake-api-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn get_json(client: &kube::Client, path: &str) -> Result<Value, kube::Error> {
    let text = client
        .request_text(http::Request::get(path).body(vec![]).unwrap())
        .await?;
    Ok(serde_json::from_str(&text).unwrap())
}

#[tokio::test(start_paused = true)]
async fn discovery_finds_added_and_core_kinds() {
    let fake = fake_with_examples();
    fake.add_kind("example.com", "v1beta1", "Widget", "widgets", false);
    let discovery = Discovery::new(fake.client()).run().await.unwrap();

    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample"))
        .unwrap();
    assert_eq!(resource.plural, "kopfexamples");
    assert_eq!(resource.api_version, "kopf.dev/v1");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation("watch"));

    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .unwrap();
    assert_eq!(
        (resource.plural.as_str(), caps.scope),
        ("configmaps", Scope::Namespaced)
    );
    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .unwrap();
    assert_eq!((resource.plural.as_str(), caps.scope), ("namespaces", Scope::Cluster));
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1beta1", "Widget"))
        .unwrap();
    assert_eq!(caps.scope, Scope::Cluster);

    let requests = fake.requests();
    for path in [
        "GET /api",
        "GET /apis",
        "GET /api/v1",
        "GET /apis/kopf.dev/v1",
        "GET /apis/example.com/v1beta1",
    ] {
        assert!(requests.iter().any(|r| r == path), "{path} not in {requests:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn list_omits_kind_and_api_version_and_filters_by_namespace() {
    let fake = fake_with_examples();
    let uid = fake.create("kopfexamples", Some("ns-b"), "two", json!({"field": 2}));
    fake.create("kopfexamples", Some("ns-a"), "one", json!({"field": 1}));
    fake.create("kopfexamples", Some("ns-b"), "three", json!({"field": 3}));
    fake.create("configmaps", Some("ns-a"), "config", json!({}));
    fake.create("namespaces", None, "ns-a", json!({}));
    assert_eq!(fake.resource_version(), 6);
    let client = fake.client();

    let list = get_json(&client, "/apis/kopf.dev/v1/kopfexamples?limit=500")
        .await
        .unwrap();
    assert_eq!(list["kind"], "KopfExampleList");
    assert_eq!(list["apiVersion"], "kopf.dev/v1");
    assert_eq!(list["metadata"]["resourceVersion"], "6");
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "three", "two"]);
    for item in items {
        assert!(item.get("kind").is_none() && item.get("apiVersion").is_none(), "{item}");
    }
    assert_eq!(items[2]["metadata"]["uid"], uid.as_str());
    assert_eq!(items[2]["metadata"]["namespace"], "ns-b");
    assert_eq!(items[2]["metadata"]["resourceVersion"], "2");
    assert_eq!(items[2]["spec"], json!({"field": 2}));

    let in_b = Api::<DynamicObject>::namespaced_with(client.clone(), "ns-b", &kopf_examples());
    let names: Vec<String> = in_b
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(names, ["three", "two"]);

    let configmaps = get_json(&client, "/api/v1/configmaps").await.unwrap();
    assert_eq!(configmaps["kind"], "ConfigMapList");
    assert_eq!(configmaps["apiVersion"], "v1");
    assert_eq!(configmaps["items"][0]["metadata"]["name"], "config");
    let namespaces = get_json(&client, "/api/v1/namespaces").await.unwrap();
    assert_eq!(namespaces["items"][0]["metadata"]["name"], "ns-a");
    assert!(namespaces["items"][0]["metadata"].get("namespace").is_none());

    // One object; unknown paths.
    let one = get_json(&client, "/apis/kopf.dev/v1/namespaces/ns-a/kopfexamples/one")
        .await
        .unwrap();
    assert_eq!(one["kind"], "KopfExample");
    for path in [
        "/apis/nope/v1/things",
        "/api/v1/secrets",
        "/apis/kopf.dev/v1/kopfexamples/one/status",
        "/nope",
    ] {
        match get_json(&client, path).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"), "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn watcher_sees_the_list_then_the_changes() {
    let fake = fake_with_examples();
    for name in ["c", "a", "b"] {
        fake.create("kopfexamples", Some("ns"), name, json!({"n": name}));
    }
    fake.create("configmaps", Some("ns"), "not-watched", json!({}));
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &["a", "b", "c"]).await;

    // Before the watch request: replayed from the history.
    fake.replace("kopfexamples", Some("ns"), "a", json!({"n": "a2"}));
    match next(&mut watcher).await.unwrap().unwrap() {
        Event::Apply(o) => {
            assert_eq!(o.name_any(), "a");
            assert_eq!(o.data["spec"], json!({"n": "a2"}));
            let types = o.types.unwrap();
            assert_eq!(
                (types.api_version.as_str(), types.kind.as_str()),
                ("kopf.dev/v1", "KopfExample")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.open_watches(), 1);

    // Live changes.
    let (event, ()) = tokio::join!(next_event(&mut watcher), async {
        fake.wait_for_watches(1).await;
        fake.delete("kopfexamples", Some("ns"), "b");
        fake.replace("configmaps", Some("ns"), "not-watched", json!({"x": 1}));
    });
    assert_eq!(event, ("Delete", "b".to_owned()));
    fake.create("kopfexamples", Some("other"), "d", json!({}));
    assert_eq!(next_event(&mut watcher).await, ("Apply", "d".to_owned()));

    let requests = fake.requests();
    let watches: Vec<&String> = requests.iter().filter(|r| r.contains("watch=")).collect();
    assert_eq!(watches.len(), 1, "{requests:?}");
    assert!(
        watches[0].starts_with("GET /apis/kopf.dev/v1/kopfexamples?"),
        "{watches:?}"
    );
    assert!(watches[0].contains("resourceVersion=5"), "{watches:?}");
}

#[tokio::test(start_paused = true)]
async fn namespaced_watch_sees_only_its_namespace() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("mine"), "a", json!({}));
    fake.create("kopfexamples", Some("theirs"), "b", json!({}));
    let api = Api::<DynamicObject>::namespaced_with(fake.client(), "mine", &kopf_examples());
    let mut watcher: Watcher = Box::pin(watcher::watcher(api, watcher::Config::default()));
    expect_initial(&mut watcher, &["a"]).await;
    fake.create("kopfexamples", Some("theirs"), "c", json!({}));
    fake.create("kopfexamples", Some("mine"), "d", json!({}));
    assert_eq!(next_event(&mut watcher).await, ("Apply", "d".to_owned()));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /apis/kopf.dev/v1/namespaces/mine/kopfexamples?"))
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_watches_are_errors_then_the_watcher_resumes() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &["a"]).await;
    let (event, ()) = tokio::join!(next_event(&mut watcher), async {
        fake.wait_for_watches(1).await;
        fake.create("kopfexamples", Some("ns"), "b", json!({}));
    });
    assert_eq!(event, ("Apply", "b".to_owned()));

    fake.drop_watches();
    assert_eq!(fake.open_watches(), 0);
    let error = expect_error(&mut watcher).await;
    assert!(matches!(error, watcher::Error::WatchFailed(_)), "{error:?}");
    // Resumes from the last resourceVersion seen, without a relist.
    fake.create("kopfexamples", Some("ns"), "c", json!({}));
    assert_eq!(next_event(&mut watcher).await, ("Apply", "c".to_owned()));
    let requests = fake.requests();
    assert_eq!(
        requests.iter().filter(|r| r.contains("watch=")).count(),
        2,
        "{requests:?}"
    );
    assert_eq!(
        requests.iter().filter(|r| !r.contains("watch=")).count(),
        1,
        "{requests:?}"
    );
    assert!(requests.last().unwrap().contains("resourceVersion=3"), "{requests:?}");
}

#[tokio::test(start_paused = true)]
async fn outage_and_expired_history_make_the_watcher_relist() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    fake.create("kopfexamples", Some("ns"), "b", json!({}));
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &["a", "b"]).await;
    let (event, ()) = tokio::join!(next_event(&mut watcher), async {
        fake.wait_for_watches(1).await;
        fake.replace("kopfexamples", Some("ns"), "a", json!({"v": 2}));
    });
    assert_eq!(event, ("Apply", "a".to_owned()));

    fake.go_down();
    assert!(matches!(
        expect_error(&mut watcher).await,
        watcher::Error::WatchFailed(_)
    ));
    match expect_error(&mut watcher).await {
        watcher::Error::WatchStartFailed(kube::Error::Api(status)) => assert_eq!(status.code, 503),
        other => panic!("{other:?}"),
    }
    // Changes while down reach nobody; discovery still answers.
    fake.delete("kopfexamples", Some("ns"), "b");
    fake.create("kopfexamples", Some("ns"), "c", json!({}));
    Discovery::new(fake.client()).run().await.unwrap();
    fake.expire_history();
    fake.go_up();

    match expect_error(&mut watcher).await {
        watcher::Error::WatchError(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version: 4 (6)"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    expect_initial(&mut watcher, &["a", "c"]).await;
    fake.create("kopfexamples", Some("ns"), "d", json!({}));
    assert_eq!(next_event(&mut watcher).await, ("Apply", "d".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn fail_next_fails_lists_and_watches() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    fake.fail_next(1);
    assert_eq!(next_event(&mut watcher).await, ("Init", String::new()));
    match expect_error(&mut watcher).await {
        watcher::Error::InitialListFailed(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (500, "InternalError"))
        }
        other => panic!("{other:?}"),
    }
    expect_initial(&mut watcher, &["a"]).await;
    fake.fail_next(2);
    fake.create("kopfexamples", Some("ns"), "b", json!({}));
    for _ in 0..2 {
        assert!(matches!(
            expect_error(&mut watcher).await,
            watcher::Error::WatchStartFailed(_)
        ));
    }
    assert_eq!(next_event(&mut watcher).await, ("Apply", "b".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn watch_timeout_ends_the_stream_cleanly() {
    let fake = fake_with_examples();
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &[]).await;
    // The watcher asks for timeoutSeconds=290; paused time runs on to it; the watcher re-watches.
    let (event, ()) = tokio::join!(next_event(&mut watcher), async {
        fake.wait_for_watches(1).await;
        tokio::time::sleep(std::time::Duration::from_secs(291)).await;
        fake.wait_for_watches(1).await;
        fake.create("kopfexamples", Some("ns"), "late", json!({}));
    });
    assert_eq!(event, ("Apply", "late".to_owned()));
    let watches = fake.requests().iter().filter(|r| r.contains("watch=")).count();
    assert_eq!(watches, 2);
}

#[tokio::test]
async fn over_tcp_with_the_kubeconfig() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    let addr = fake.listen().await;
    let dir = temp_dir("tcp");
    let path = fake.kubeconfig(addr, &dir);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    assert_eq!(config.cluster_url.to_string(), format!("http://{addr}/"));
    let client = kube::Client::try_from(config).unwrap();

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample"))
            .is_some()
    );
    let api = Api::<DynamicObject>::all_with(client.clone(), &kopf_examples());
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(names, ["a"]);

    let mut watcher = watch_all(client.clone(), &kopf_examples());
    expect_initial(&mut watcher, &["a"]).await;
    let (event, ()) = tokio::join!(next_event(&mut watcher), async {
        fake.wait_for_watches(1).await;
        fake.create("kopfexamples", Some("ns"), "b", json!({}));
    });
    assert_eq!(event, ("Apply", "b".to_owned()));
    // Over TCP the dropped connection is cut in the middle of the chunked body, which kube takes
    // for a resumable end (no error): the watcher re-watches from where it was.
    fake.drop_watches();
    let (event, ()) = tokio::join!(next_event(&mut watcher), async {
        fake.wait_for_watches(1).await;
        fake.create("kopfexamples", Some("ns"), "c", json!({}));
    });
    assert_eq!(event, ("Apply", "c".to_owned()));
    assert_eq!(fake.requests().iter().filter(|r| r.contains("watch=")).count(), 2);

    fake.stop();
    assert!(api.list(&ListParams::default()).await.is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn try_default_accepts_the_kubeconfig() {
    let fake = FakeApi::new();
    fake.create("configmaps", Some("default"), "settings", json!({}));
    let addr = fake.listen().await;
    let dir = temp_dir("infer");
    let path = fake.kubeconfig(addr, &dir);
    // The only test of this binary that reads the environment.
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("KUBECONFIG", &path) };
    let client = kube::Client::try_default().await.unwrap();
    assert_eq!(client.default_namespace(), "default");
    let configmaps = Api::<k8s_openapi::api::core::v1::ConfigMap>::default_namespaced(client);
    let list = configmaps.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("settings"));
    drop(fake);
    std::fs::remove_dir_all(dir).unwrap();
}
