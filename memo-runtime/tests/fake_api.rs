//! The fake Kubernetes API server of the tests (support/fake_api.rs), checked with the real kube
//! client: discovery, LIST, watcher (changes, dropped watches, outages, expired histories,
//! failures), writes (merge and JSON patches, the status subresource, finalizers, conflicts,
//! creation), Events of the recorder, request counts, over both transports.
#![cfg(feature = "kube")]

#[path = "support/fake_api.rs"]
mod fake_api;

use std::future::poll_fn;
use std::path::PathBuf;
use std::pin::Pin;

use fake_api::FakeApi;
use futures_core::Stream;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
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
async fn list_items_of_built_in_kinds_omit_kind_and_api_version_and_filter_by_namespace() {
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
        assert_eq!(
            (&item["kind"], &item["apiVersion"]),
            (&json!("KopfExample"), &json!("kopf.dev/v1")),
            "a custom resource's items keep them: {item}"
        );
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
    assert!(
        configmaps["items"][0].get("kind").is_none() && configmaps["items"][0].get("apiVersion").is_none(),
        "built-in kinds' items come without them: {}",
        configmaps["items"][0]
    );
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

// Writes: patches, the status subresource, finalizers, conflicts, Events, request counts.

fn examples_in(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &kopf_examples())
}

/// The `Status` of a refused request: (code, reason).
fn refusal<T: std::fmt::Debug>(outcome: Result<T, kube::Error>) -> (u16, String) {
    match outcome {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.status, Some(kube::core::response::StatusSummary::Failure));
            (status.code, status.reason.clone())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn json_patch(operations: Value) -> Patch<()> {
    Patch::Json(serde_json::from_value(operations).unwrap())
}

fn rv(object: &DynamicObject) -> String {
    object.metadata.resource_version.clone().unwrap()
}

#[tokio::test(start_paused = true)]
async fn merge_patches_bump_the_version_and_the_generation_and_are_watched() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({"x": 1, "gone": true}));
    let api = examples_in(fake.client(), "ns");
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &["a"]).await;
    fake.reset_counts();

    let patch = json!({
        "spec": {"x": 2, "gone": null, "new": {"deep": [1, 2]}},
        "metadata": {"labels": {"l": "v"}, "uid": "forged", "generation": 42},
        "status": {"ignored": true},
    });
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.data["spec"], json!({"x": 2, "new": {"deep": [1, 2]}}));
    assert_eq!(patched.labels().get("l").map(String::as_str), Some("v"));
    assert_eq!(patched.metadata.uid.as_deref(), Some("uid-1"));
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(rv(&patched), "3");
    // Custom resources have the status subresource: the main resource ignores status.
    assert!(patched.data.get("status").is_none(), "{:?}", patched.data);
    assert_eq!(fake.object("kopfexamples", Some("ns"), "a").unwrap()["spec"]["x"], 2);
    match next(&mut watcher).await.unwrap().unwrap() {
        Event::Apply(o) => {
            assert_eq!(o.data["spec"]["x"], 2);
            assert_eq!(rv(&o), "3");
        }
        other => panic!("{other:?}"),
    }

    // Metadata only: a new resourceVersion, the same generation.
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!((rv(&patched).as_str(), patched.metadata.generation), ("4", Some(2)));
    assert_eq!(next_event(&mut watcher).await, ("Apply", "a".to_owned()));
    // A patch that changes nothing writes nothing: no new resourceVersion, no event.
    let same = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"x": 2}})))
        .await
        .unwrap();
    assert_eq!(rv(&same), "4");
    assert_eq!(fake.resource_version(), 4);
    fake.replace("kopfexamples", Some("ns"), "a", json!({"sentinel": true}));
    match next(&mut watcher).await.unwrap().unwrap() {
        Event::Apply(o) => assert_eq!(o.data["spec"], json!({"sentinel": true})),
        other => panic!("{other:?}"),
    }

    // Every request recorded: method, path, content type, body.
    let path = "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a";
    assert_eq!(fake.count("PATCH", path), 3);
    assert_eq!(fake.count("patch", "/apis/kopf.dev/"), 3);
    assert_eq!(fake.count("GET", path), 0);
    let requests = fake.recorded_requests();
    let first = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(first.path, path);
    assert_eq!(first.content_type.as_deref(), Some("application/merge-patch+json"));
    assert_eq!(first.body.as_ref(), Some(&patch));
    assert!(first.line().starts_with(&format!("PATCH {path}")), "{}", first.line());
    assert!(fake.requests().contains(&first.line()));
    fake.reset_counts();
    assert_eq!(fake.count("*", "/"), 0);
    assert!(fake.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn json_patches_apply_all_their_operations_or_none() {
    let fake = fake_with_examples();
    fake.create_with(
        "kopfexamples",
        Some("ns"),
        "a",
        json!({"x": 1, "list": [1, 2], "gone": 0, "from": {"v": "moved"}}),
        json!({"uid": "u", "annotations": {"keep": "yes"}}),
    );
    let api = examples_in(fake.client(), "ns");
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &json_patch(json!([
                {"op": "test", "path": "/spec/x", "value": 1},
                {"op": "replace", "path": "/spec/x", "value": 10},
                {"op": "add", "path": "/spec/list/-", "value": 3},
                {"op": "add", "path": "/spec/list/0", "value": 0},
                {"op": "remove", "path": "/spec/gone"},
                {"op": "move", "from": "/spec/from/v", "path": "/spec/moved"},
                {"op": "copy", "from": "/spec/x", "path": "/spec/copied"},
                {"op": "add", "path": "/metadata/annotations/example.com~1key", "value": "slash"},
                {"op": "add", "path": "/metadata/finalizers", "value": ["memo/f"]},
            ])),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data["spec"],
        json!({"x": 10, "list": [0, 1, 2, 3], "from": {}, "moved": "moved", "copied": 10})
    );
    assert_eq!(patched.annotations()["example.com/key"], "slash");
    assert_eq!(patched.annotations()["keep"], "yes");
    assert_eq!(patched.finalizers(), ["memo/f"]);
    assert_eq!(patched.metadata.generation, Some(2));
    let version = fake.resource_version();
    assert_eq!(rv(&patched), version.to_string());
    let request = fake.recorded_requests().pop().unwrap();
    assert_eq!(request.content_type.as_deref(), Some("application/json-patch+json"));

    // A failed test (or a path that is not there) is 422, and nothing of the patch is applied.
    for operations in [
        json!([
            {"op": "replace", "path": "/spec/x", "value": 99},
            {"op": "test", "path": "/spec/x", "value": 1},
        ]),
        json!([
            {"op": "add", "path": "/spec/y", "value": 1},
            {"op": "remove", "path": "/spec/nothing"},
        ]),
        json!([{"op": "replace", "path": "/spec/list/9", "value": 1}]),
        json!([{"op": "add", "path": "/spec/no/such/parent", "value": 1}]),
    ] {
        let outcome = api.patch("a", &PatchParams::default(), &json_patch(operations)).await;
        assert_eq!(refusal(outcome), (422, "Invalid".to_owned()));
    }
    assert_eq!(fake.resource_version(), version);
    assert_eq!(fake.object("kopfexamples", Some("ns"), "a").unwrap()["spec"]["x"], 10);
    // A test of the resourceVersion is an optimistic lock.
    let stale = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "replace", "path": "/spec/x", "value": 11},
    ]);
    let outcome = api.patch("a", &PatchParams::default(), &json_patch(stale)).await;
    assert_eq!(refusal(outcome).0, 422);
}

#[tokio::test(start_paused = true)]
async fn apply_and_strategic_patches_of_custom_resources_are_415() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    fake.create("configmaps", Some("ns"), "c", json!({}));
    let api = examples_in(fake.client(), "ns");
    let apply = api
        .patch(
            "a",
            &PatchParams::apply("memo"),
            &Patch::Apply(json!({"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "spec": {"x": 1}})),
        )
        .await;
    assert_eq!(refusal(apply), (415, "UnsupportedMediaType".to_owned()));
    let strategic = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"x": 1}})),
        )
        .await;
    assert_eq!(refusal(strategic), (415, "UnsupportedMediaType".to_owned()));
    assert_eq!(fake.object("kopfexamples", Some("ns"), "a").unwrap()["spec"], json!({}));
    // A built-in kind takes a strategic merge patch (as a merge patch).
    let configmaps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(fake.client(), "ns");
    let patched = configmaps
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "v");
}

#[tokio::test(start_paused = true)]
async fn the_status_subresource_writes_only_the_status() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({"x": 1}));
    let client = fake.client();
    let api = examples_in(client.clone(), "ns");

    // Discovery says so, as an APIResourceList entry `kopfexamples/status`.
    let resources = get_json(&client, "/apis/kopf.dev/v1").await.unwrap();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kopfexamples", "kopfexamples/status"]);
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample"))
        .unwrap();
    let subresources: Vec<&str> = caps.subresources.iter().map(|(r, _)| r.plural.as_str()).collect();
    assert_eq!(subresources, ["status"]);
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .unwrap();
    assert!(caps.subresources.is_empty());

    let patched = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"x": 99}, "metadata": {"labels": {"l": "v"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"], json!({"phase": "Ready"}));
    assert_eq!(patched.data["spec"], json!({"x": 1}));
    assert!(patched.labels().is_empty());
    assert_eq!((rv(&patched).as_str(), patched.metadata.generation), ("3", Some(1)));
    assert_eq!(
        fake.count("PATCH", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a/status"),
        1
    );

    // The main resource keeps the status as it is.
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": null, "spec": {"x": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"], json!({"phase": "Ready"}));
    assert_eq!(
        (patched.data["spec"]["x"].as_i64(), patched.metadata.generation),
        (Some(2), Some(2))
    );

    // A PUT of the status: only the status.
    let mut object = patched.clone();
    object.data["status"] = json!({"phase": "Done"});
    object.data["spec"] = json!({"x": 100});
    let replaced = api.replace_status("a", &PostParams::default(), &object).await.unwrap();
    assert_eq!(replaced.data["status"], json!({"phase": "Done"}));
    assert_eq!(replaced.data["spec"], json!({"x": 2}));
    let got = get_json(&client, "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a/status")
        .await
        .unwrap();
    assert_eq!(got["status"], json!({"phase": "Done"}));

    // Without the subresource: /status is 404, the main resource writes the status.
    fake.set_status_subresource("kopfexamples", false);
    let resources = get_json(&client, "/apis/kopf.dev/v1").await.unwrap();
    assert_eq!(resources["resources"].as_array().unwrap().len(), 1);
    let outcome = api
        .patch_status("a", &PatchParams::default(), &Patch::Merge(json!({"status": {}})))
        .await;
    assert_eq!(refusal(outcome), (404, "NotFound".to_owned()));
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Main"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"], json!({"phase": "Main"}));
    assert_eq!(patched.metadata.generation, Some(2));
}

#[tokio::test(start_paused = true)]
async fn finalizers_hold_a_deletion_until_they_are_gone() {
    let fake = fake_with_examples();
    fake.create_with(
        "kopfexamples",
        Some("ns"),
        "held",
        json!({}),
        json!({"uid": "u-held", "finalizers": ["memo/one", "memo/two"]}),
    );
    fake.create("kopfexamples", Some("ns"), "free", json!({}));
    let api = examples_in(fake.client(), "ns");
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &["free", "held"]).await;

    // With finalizers: marked, kept, MODIFIED.
    let marked = api
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the object, not a Status");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    assert_eq!(marked.metadata.generation, Some(2));
    assert!(fake.object("kopfexamples", Some("ns"), "held").is_some());
    match next(&mut watcher).await.unwrap().unwrap() {
        Event::Apply(o) => {
            assert_eq!(o.name_any(), "held");
            assert!(o.metadata.deletion_timestamp.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Deleting again changes nothing; no finalizer can be added now.
    let again = api
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(rv(&again), rv(&marked));
    let added = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["memo/one", "memo/two", "memo/three"]}})),
        )
        .await;
    assert_eq!(refusal(added), (422, "Invalid".to_owned()));

    // One finalizer off: still there.
    let patched = api
        .patch(
            "held",
            &PatchParams::default(),
            &json_patch(json!([{"op": "remove", "path": "/metadata/finalizers/0"}])),
        )
        .await
        .unwrap();
    assert_eq!(patched.finalizers(), ["memo/two"]);
    assert_eq!(next_event(&mut watcher).await, ("Apply", "held".to_owned()));
    // The last one off: gone, DELETED.
    let last = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": []}})),
        )
        .await
        .unwrap();
    assert!(last.finalizers().is_empty());
    match next(&mut watcher).await.unwrap().unwrap() {
        Event::Delete(o) => {
            assert_eq!(o.name_any(), "held");
            assert_eq!(rv(&o), rv(&last));
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.object("kopfexamples", Some("ns"), "held").is_none());
    let outcome = api.get("held").await;
    assert_eq!(refusal(outcome), (404, "NotFound".to_owned()));

    // Without finalizers: gone at once.
    let deleted = api
        .delete("free", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleted.metadata.deletion_timestamp.is_none());
    assert_eq!(next_event(&mut watcher).await, ("Delete", "free".to_owned()));
    let outcome = api.delete("free", &DeleteParams::default()).await;
    assert_eq!(refusal(outcome), (404, "NotFound".to_owned()));

    // The scripted deletion and patch follow the same rules.
    fake.create_with("kopfexamples", Some("ns"), "s", json!({}), json!({"finalizers": ["f"]}));
    assert_eq!(next_event(&mut watcher).await, ("Apply", "s".to_owned()));
    fake.delete("kopfexamples", Some("ns"), "s");
    assert_eq!(next_event(&mut watcher).await, ("Apply", "s".to_owned()));
    assert!(fake.object("kopfexamples", Some("ns"), "s").unwrap()["metadata"]["deletionTimestamp"].is_string());
    fake.merge(
        "kopfexamples",
        Some("ns"),
        "s",
        json!({"metadata": {"finalizers": null}}),
    );
    assert_eq!(next_event(&mut watcher).await, ("Delete", "s".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn stale_resource_versions_are_409_conflicts() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({"x": 1}));
    let client = fake.client();
    let api = examples_in(client.clone(), "ns");
    let old = api.get("a").await.unwrap();
    fake.replace("kopfexamples", Some("ns"), "a", json!({"x": 2}));
    let version = fake.resource_version();

    let mut stale = old.clone();
    stale.data["spec"] = json!({"x": 3});
    match api.replace("a", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("the object has been modified"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    let outcome = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv(&old)}, "spec": {"x": 3}})),
        )
        .await;
    assert_eq!(refusal(outcome), (409, "Conflict".to_owned()));
    assert_eq!(fake.resource_version(), version);

    // The raw Status, as the server sends it.
    let request = http::Request::patch("/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a")
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::to_vec(&json!({"metadata": {"resourceVersion": "1"}})).unwrap())
        .unwrap();
    let outcome = client.request_text(request).await;
    assert_eq!(refusal(outcome), (409, "Conflict".to_owned()));
    let last = fake.recorded_requests().pop().unwrap();
    let (method, path) = (last.method.as_str(), last.path.as_str());
    assert_eq!(
        (method, path),
        ("PATCH", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a")
    );

    // The current resourceVersion is accepted.
    let mut current = api.get("a").await.unwrap();
    current.data["spec"] = json!({"x": 4});
    let replaced = api.replace("a", &PostParams::default(), &current).await.unwrap();
    assert_eq!(
        (replaced.data["spec"]["x"].as_i64(), replaced.metadata.generation),
        (Some(4), Some(3))
    );
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": rv(&replaced)}, "spec": {"x": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["x"], 5);

    // No unconditional updates of custom resources; a precondition of a delete is checked.
    let mut unconditional = patched.clone();
    unconditional.metadata.resource_version = None;
    let outcome = api.replace("a", &PostParams::default(), &unconditional).await;
    assert_eq!(refusal(outcome), (422, "Invalid".to_owned()));
    let outcome = api
        .delete(
            "a",
            &DeleteParams::default().preconditions(kube::api::Preconditions {
                resource_version: Some(rv(&old)),
                uid: None,
            }),
        )
        .await;
    assert_eq!(refusal(outcome), (409, "Conflict".to_owned()));

    // A missing object is 404 to every verb.
    let outcome = api.get("missing").await;
    assert_eq!(refusal(outcome), (404, "NotFound".to_owned()));
    let outcome = api
        .patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
    assert_eq!(refusal(outcome), (404, "NotFound".to_owned()));
    let outcome = api.replace("missing", &PostParams::default(), &patched).await;
    assert_eq!(refusal(outcome), (404, "NotFound".to_owned()));
    match api.get("missing").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.message, "kopfexamples.kopf.dev \"missing\" not found")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn posts_create_objects() {
    let fake = fake_with_examples();
    let api = examples_in(fake.client(), "ns");
    let mut watcher = watch_all(fake.client(), &kopf_examples());
    expect_initial(&mut watcher, &[]).await;
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": "new", "uid": "forged"},
        "spec": {"x": 1},
        "status": {"dropped": true},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("ns"));
    assert_ne!(created.metadata.uid.as_deref(), Some("forged"));
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.data.get("status").is_none());
    assert_eq!(next_event(&mut watcher).await, ("Apply", "new".to_owned()));
    let again = api.create(&PostParams::default(), &object).await;
    assert_eq!(refusal(again), (409, "AlreadyExists".to_owned()));

    let mut generated = object.clone();
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".to_owned());
    let created = api.create(&PostParams::default(), &generated).await.unwrap();
    assert!(created.name_any().starts_with("gen-"), "{}", created.name_any());
    assert_eq!(fake.count("POST", "/apis/kopf.dev/v1/namespaces/ns/kopfexamples"), 3);
}

#[tokio::test(start_paused = true)]
async fn the_recorder_posts_events_and_patches_their_series() {
    use k8s_openapi::api::core::v1::ObjectReference;
    use kube::runtime::events::{Event as Publish, EventType, Recorder, Reporter};

    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    let client = fake.client();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "memo-test".to_owned(),
            instance: Some("pod-1".to_owned()),
        },
    );
    let reference = ObjectReference {
        api_version: Some("kopf.dev/v1".to_owned()),
        kind: Some("KopfExample".to_owned()),
        name: Some("a".to_owned()),
        namespace: Some("ns".to_owned()),
        uid: Some("uid-1".to_owned()),
        ..ObjectReference::default()
    };
    let event = Publish {
        type_: EventType::Warning,
        reason: "Failed".to_owned(),
        note: Some("the handler failed".to_owned()),
        action: "Handling".to_owned(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    let events = fake.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let stored = &events[0];
    assert_eq!(stored["apiVersion"], "events.k8s.io/v1");
    assert_eq!(stored["kind"], "Event");
    assert_eq!(stored["metadata"]["namespace"], "ns");
    assert!(stored["metadata"]["name"].as_str().unwrap().starts_with("a."));
    assert_eq!(stored["type"], "Warning");
    assert_eq!(stored["reason"], "Failed");
    assert_eq!(stored["note"], "the handler failed");
    assert_eq!(stored["action"], "Handling");
    assert_eq!(stored["reportingController"], "memo-test");
    assert_eq!(stored["reportingInstance"], "pod-1");
    assert_eq!(stored["regarding"]["name"], "a");
    assert_eq!(stored["regarding"]["kind"], "KopfExample");
    assert!(stored.get("series").is_none());
    assert_eq!(fake.count("POST", "/apis/events.k8s.io/v1/namespaces/ns/events"), 1);

    // The same event again: a series, patched into the stored Event.
    recorder.publish(&event, &reference).await.unwrap();
    let events = fake.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["series"]["count"], 2);
    assert_eq!(events[0]["metadata"]["name"], stored["metadata"]["name"]);
    assert_eq!(fake.count("PATCH", "/apis/events.k8s.io/v1/namespaces/ns/events/"), 1);
    assert_eq!(fake.count("POST", "/apis/events.k8s.io/"), 1);

    // Listed back through the API; not discovered.
    let listed = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), "ns")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].series.as_ref().map(|s| s.count), Some(2));
    let groups = get_json(&client, "/apis").await.unwrap();
    assert!(!groups.to_string().contains("events.k8s.io"), "{groups}");

    // Core v1 Events are stored too.
    let core = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), "ns");
    let posted: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "core-event"},
        "involvedObject": {"name": "a", "namespace": "ns"},
        "reason": "Old",
    }))
    .unwrap();
    core.create(&PostParams::default(), &posted).await.unwrap();
    let events = fake.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[1]["apiVersion"].as_str(), events[1]["reason"].as_str()),
        (Some("v1"), Some("Old"))
    );
}

#[tokio::test(start_paused = true)]
async fn failed_writes_and_outages() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({}));
    let api = examples_in(fake.client(), "ns");
    fake.fail_next_writes(1);
    let patch = Patch::Merge(json!({"spec": {"x": 1}}));
    let outcome = api.patch("a", &PatchParams::default(), &patch).await;
    assert_eq!(refusal(outcome), (500, "InternalError".to_owned()));
    api.get("a").await.unwrap();
    api.patch("a", &PatchParams::default(), &patch).await.unwrap();
    fake.go_down();
    let outcome = api.patch("a", &PatchParams::default(), &patch).await;
    assert_eq!(refusal(outcome), (503, "ServiceUnavailable".to_owned()));
    fake.go_up();
    assert_eq!(fake.count("PATCH", "/"), 3);
    assert_eq!(fake.count("GET", "/"), 1);
}

#[tokio::test]
async fn writes_over_tcp() {
    let fake = fake_with_examples();
    fake.create("kopfexamples", Some("ns"), "a", json!({"x": 1}));
    let addr = fake.listen().await;
    let dir = temp_dir("writes");
    let path = fake.kubeconfig(addr, &dir);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    let api = examples_in(kube::Client::try_from(config).unwrap(), "ns");
    let patched = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ok": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"], json!({"ok": true}));
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &json_patch(json!([{"op": "replace", "path": "/spec/x", "value": 2}])),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["x"], 2);
    let request = fake.recorded_requests().pop().unwrap();
    assert_eq!(request.content_type.as_deref(), Some("application/json-patch+json"));
    fake.stop();
    std::fs::remove_dir_all(dir).unwrap();
}
