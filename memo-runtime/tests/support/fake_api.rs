//! A fake Kubernetes API server for the tests of the Kubernetes source: classic discovery, LIST
//! and WATCH of any added kind, writes (create, replace, merge and JSON patches, the status
//! subresource, deletion with finalizers), Events, scripted changes, outages, failures and expired
//! histories.
//!
//! One shared state, two transports: [`FakeApi::client`] answers in process (no sockets, works
//! under tokio's paused time) and [`FakeApi::listen`] serves HTTP/1.1 on a loopback port, with
//! [`FakeApi::kubeconfig`] writing a kubeconfig for it (for another process).
//!
//! Like a real API server: LIST items have no `kind`/`apiVersion`, watch events carry the full
//! object, a watch from a resourceVersion older than the expired mark gets a 410 `ERROR` event
//! and ends, every change bumps one global resourceVersion. Writes:
//!
//! - `PATCH` takes `application/merge-patch+json` (RFC 7386) and `application/json-patch+json`
//!   (RFC 6902: add, remove, replace, move, copy, test; a failed op is 422 `Invalid`);
//!   `application/apply-patch+yaml` is 415, and so is a strategic merge patch of a custom
//!   resource (of a built-in kind it is taken for a merge patch). `PUT` replaces, `POST` to a
//!   collection creates (`generateName` served).
//! - A write that changes nothing is a no-op (no new resourceVersion, no event), as on a real
//!   server; a change bumps `metadata.resourceVersion`, `metadata.generation` when `spec`
//!   changed, and is a MODIFIED watch event. Server-owned metadata (uid, creationTimestamp,
//!   generation, deletionTimestamp, ...) cannot be written.
//! - A `metadata.resourceVersion` in a PUT, or left by a patch, other than the stored one is 409
//!   `Conflict`; a PUT of a custom resource without one is 422 (no unconditional updates of
//!   custom resources); a missing object is 404 `NotFound`; all errors are `Status` objects.
//! - Kinds with the status subresource (by default the custom resources, see
//!   [`FakeApi::set_status_subresource`]) are discovered with `{plural}/status`; writes to
//!   `{name}/status` change only `status`, writes to the object leave `status` as it was.
//!   Without it, `{name}/status` is 404 and `status` is written with the rest.
//! - `DELETE` of an object with finalizers sets `deletionTimestamp` (and
//!   `deletionGracePeriodSeconds: 0`, a new generation), a MODIFIED event; no finalizer can be
//!   added then (422); the write that leaves no finalizer removes it (a DELETED event). Without
//!   finalizers `DELETE` removes at once. Preconditions (uid, resourceVersion) are checked (409).
//! - Events (`events.k8s.io/v1` and core `v1`, namespaced) are stored, not watched, not
//!   discovered: created, patched, replaced, got, listed and deleted; [`FakeApi::events`].
//! - Every request is recorded: [`FakeApi::requests`], [`FakeApi::recorded_requests`],
//!   [`FakeApi::count`], [`FakeApi::reset_counts`].
//!
//! Not served: label/field selectors (ignored), `limit`/`continue` (everything in one page),
//! dry runs, server-side apply, subresources other than `status`, BOOKMARK events (only the
//! end-of-initial-events one of `sendInitialEvents=true`), aggregated discovery.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::{Body, Frame};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every answer of the fake.
pub type FakeBody = UnsyncBoxBody<Bytes, BoxError>;

/// The `creationTimestamp` of every object.
const CREATION_TIMESTAMP: &str = "2026-01-01T00:00:00Z";

/// The `deletionTimestamp` of every object deleted while it has finalizers.
const DELETION_TIMESTAMP: &str = "2026-01-01T00:01:00Z";

/// The metadata fields only the server writes: a write's values of them are ignored.
const SERVER_METADATA: [&str; 7] = [
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

const VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];

/// A kind served by the fake.
#[derive(Clone, Debug)]
struct KindDef {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
    /// A custom resource (a group with a dot, not `*.k8s.io`): no unconditional updates, no
    /// strategic merge patches.
    custom: bool,
    /// Served with the `status` subresource.
    status_subresource: bool,
}

impl KindDef {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The identity of the kind in the store: `group/version/plural`.
    fn key(&self) -> String {
        format!("{}/{}/{}", self.group, self.version, self.plural)
    }

    /// `plural.group`, as in the API server's messages.
    fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn not_found(&self, name: &str) -> Refusal {
        let mut body = status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{name}\" not found", self.resource()),
        );
        body["details"] = json!({ "name": name, "group": self.group, "kind": self.plural });
        Refusal(StatusCode::NOT_FOUND, body)
    }

    fn conflict(&self, name: &str, why: &str) -> Refusal {
        let mut body = status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!("Operation cannot be fulfilled on {} \"{name}\": {why}", self.resource()),
        );
        body["details"] = json!({ "name": name, "group": self.group, "kind": self.plural });
        Refusal(StatusCode::CONFLICT, body)
    }

    fn invalid(&self, name: &str, message: &str) -> Refusal {
        let mut body = status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            &format!("{} \"{name}\" is invalid: {message}", self.kind),
        );
        body["details"] = json!({ "name": name, "group": self.group, "kind": self.kind });
        Refusal(StatusCode::UNPROCESSABLE_ENTITY, body)
    }

    fn already_exists(&self, name: &str) -> Refusal {
        let mut body = status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", self.resource()),
        );
        body["details"] = json!({ "name": name, "group": self.group, "kind": self.plural });
        Refusal(StatusCode::CONFLICT, body)
    }
}

/// What the fake answers to a request it refuses: the code and the `Status` object.
#[derive(Debug)]
pub struct Refusal(StatusCode, Value);

impl Refusal {
    fn new(code: StatusCode, reason: &str, message: &str) -> Refusal {
        Refusal(code, status(code, reason, message))
    }

    fn response(&self) -> Response<FakeBody> {
        json_response(self.0, &self.1)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.0.as_u16(), self.1["reason"], self.1["message"])
    }
}

/// What a write to an object may change.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Write {
    /// The object: all but `status` if the kind has the status subresource.
    Object,
    /// The `status` subresource: only `status`.
    Status,
    /// Everything (a scripted change).
    Any,
}

/// Whether a group is a custom resources' one: with a dot, not Kubernetes' own (`*.k8s.io`).
fn is_custom_group(group: &str) -> bool {
    group.contains('.') && !group.ends_with("k8s.io")
}

/// One request, as the fake received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `PATCH`, ...
    pub method: String,
    pub path: String,
    /// Without the `?`; `None` when there is none.
    pub query: Option<String>,
    /// The `Content-Type` header, as sent.
    pub content_type: Option<String>,
    /// The body, if it is JSON (`None` when empty or not JSON).
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// `"GET /path?query"`, as [`FakeApi::requests`] lists it.
    pub fn line(&self) -> String {
        match &self.query {
            Some(q) => format!("{} {}?{q}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// One change, as recorded in the history: the watch event's type and full object.
struct Change {
    rv: u64,
    kind_key: String,
    namespace: Option<String>,
    event: &'static str,
    object: Value,
}

/// What a watch body receives: an event line, or the order to fail.
type WatchItem = Result<Bytes, WatchDropped>;

/// An open watch connection.
struct Watch {
    kind_key: String,
    /// `None`: all namespaces.
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<WatchItem>,
}

impl Watch {
    fn wants(&self, kind_key: &str, namespace: Option<&str>) -> bool {
        self.kind_key == kind_key && (self.namespace.is_none() || self.namespace.as_deref() == namespace)
    }
}

/// The error a dropped watch connection ends with.
#[derive(Debug)]
pub struct WatchDropped;

impl fmt::Display for WatchDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("watch connection dropped by the fake API server")
    }
}

impl std::error::Error for WatchDropped {}

struct State {
    kinds: Vec<KindDef>,
    /// (kind key, namespace or "", name) → the full object (with kind and apiVersion).
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<Change>,
    rv: u64,
    uids: u64,
    /// Watches from a resourceVersion below this get 410 Expired.
    expired_below: u64,
    watches: Vec<Watch>,
    down: bool,
    fail_next: usize,
    fail_writes: usize,
    requests: Vec<RecordedRequest>,
}

struct Inner {
    state: Mutex<State>,
    /// Notified whenever a watch connection opens.
    watch_opened: Notify,
}

/// Stops the TCP servers when the last clone of the `FakeApi` goes.
struct Servers {
    /// One per server; dropping it stops that server and its connections.
    shutdowns: Mutex<Vec<tokio::sync::watch::Sender<()>>>,
}

/// The fake API server; clones share the state.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Inner>,
    servers: Arc<Servers>,
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    /// A fake serving core v1 `configmaps` (namespaced) and `namespaces` (cluster-scoped), no
    /// objects, resourceVersion 1.
    pub fn new() -> FakeApi {
        let state = State {
            kinds: Vec::new(),
            objects: BTreeMap::new(),
            history: Vec::new(),
            rv: 1,
            uids: 0,
            expired_below: 0,
            watches: Vec::new(),
            down: false,
            fail_next: 0,
            fail_writes: 0,
            requests: Vec::new(),
        };
        let fake = FakeApi {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                watch_opened: Notify::new(),
            }),
            servers: Arc::new(Servers {
                shutdowns: Mutex::new(Vec::new()),
            }),
        };
        fake.add_kind("", "v1", "ConfigMap", "configmaps", true);
        fake.add_kind("", "v1", "Namespace", "namespaces", false);
        fake
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    /// Serve a kind (group `""`: core); a kind of the same group, version and plural is
    /// replaced. A custom resource (a group with a dot, not `*.k8s.io`) has the status
    /// subresource, a built-in kind not: see [`FakeApi::set_status_subresource`].
    pub fn add_kind(&self, group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) {
        let def = KindDef {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
            custom: is_custom_group(group),
            status_subresource: is_custom_group(group),
        };
        let mut state = self.state();
        match state.kinds.iter_mut().find(|k| k.key() == def.key()) {
            Some(existing) => *existing = def,
            None => state.kinds.push(def),
        }
    }

    /// Serve the kinds with this plural with the status subresource (`on`) or without. Panics if
    /// there is no such kind.
    pub fn set_status_subresource(&self, plural: &str, on: bool) {
        let mut state = self.state();
        let mut found = false;
        for kind in state.kinds.iter_mut().filter(|k| k.plural == plural) {
            kind.status_subresource = on;
            found = true;
        }
        assert!(found, "fake API: unknown kind {plural} (add_kind first)");
    }

    /// Create an object of the kind with this plural (the first added, if several); returns its
    /// uid. Panics if the kind is unknown, the namespace does not fit the kind's scope or the
    /// object exists.
    pub fn create(&self, plural: &str, namespace: Option<&str>, name: &str, spec: Value) -> String {
        let uid = {
            let mut state = self.state();
            state.uids += 1;
            format!("uid-{}", state.uids)
        };
        self.create_with(plural, namespace, name, spec, json!({ "uid": uid }));
        uid
    }

    /// [`FakeApi::create`] with `metadata` fields of the test's own (labels, finalizers, managed
    /// fields, a uid of its choice), merged into name, resourceVersion, creationTimestamp and
    /// generation 1; a null field is left out, so that `{"uid": null}` makes an object without
    /// a uid, as no real server would.
    pub fn create_with(&self, plural: &str, namespace: Option<&str>, name: &str, spec: Value, metadata: Value) {
        let mut state = self.state();
        let kind = state.kind_for(plural, namespace);
        let key = (kind.key(), namespace.unwrap_or("").to_owned(), name.to_owned());
        assert!(
            !state.objects.contains_key(&key),
            "fake API: {plural} {namespace:?}/{name} exists already"
        );
        state.rv += 1;
        let mut generated = json!({
            "name": name,
            "resourceVersion": state.rv.to_string(),
            "creationTimestamp": CREATION_TIMESTAMP,
            "generation": 1,
        });
        if let (Value::Object(fields), Value::Object(extra)) = (&mut generated, metadata) {
            for (field, value) in extra {
                if !value.is_null() {
                    fields.insert(field, value);
                }
            }
        }
        if let Some(ns) = namespace {
            generated["namespace"] = json!(ns);
        }
        let object = json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind,
            "metadata": generated,
            "spec": spec,
        });
        state.objects.insert(key, object.clone());
        state.record(&kind, namespace, "ADDED", object);
    }

    /// Replace the spec of an existing object (always a MODIFIED event, a new generation if the
    /// spec differs). Panics if there is none.
    pub fn replace(&self, plural: &str, namespace: Option<&str>, name: &str, spec: Value) {
        let mut state = self.state();
        let kind = state.kind_for(plural, namespace);
        let key = (kind.key(), namespace.unwrap_or("").to_owned(), name.to_owned());
        state.rv += 1;
        let rv = state.rv.to_string();
        let Some(object) = state.objects.get_mut(&key) else {
            panic!("fake API: no {plural} {namespace:?}/{name} to replace");
        };
        object["metadata"]["resourceVersion"] = json!(rv);
        if object["spec"] != spec {
            bump_generation(object);
        }
        object["spec"] = spec;
        let object = object.clone();
        state.record(&kind, namespace, "MODIFIED", object);
    }

    /// Apply a merge patch (RFC 7386) to an existing object, as another client's `PATCH` would
    /// (status included even with the status subresource; the rules of the server otherwise:
    /// no-op, generation, finalizers); returns the object as written. Panics if the server
    /// refuses it.
    pub fn merge(&self, plural: &str, namespace: Option<&str>, name: &str, patch: Value) -> Value {
        let mut state = self.state();
        let kind = state.kind_for(plural, namespace);
        let key = (kind.key(), namespace.unwrap_or("").to_owned(), name.to_owned());
        let Some(mut proposed) = state.objects.get(&key).cloned() else {
            panic!("fake API: no {plural} {namespace:?}/{name} to patch");
        };
        merge_patch(&mut proposed, &patch);
        match state.update(&kind, namespace, name, Write::Any, proposed) {
            Ok(object) => object,
            Err(error) => panic!("fake API: the patch of {plural} {namespace:?}/{name} was refused: {error}"),
        }
    }

    /// Delete an existing object, as a client's `DELETE` would: without finalizers, at once (a
    /// DELETED event with the last object and a new resourceVersion); with finalizers, a
    /// `deletionTimestamp` (a MODIFIED event). Panics if there is none.
    pub fn delete(&self, plural: &str, namespace: Option<&str>, name: &str) {
        let mut state = self.state();
        let kind = state.kind_for(plural, namespace);
        if let Err(error) = state.delete(&kind, namespace, name, &Value::Null) {
            panic!("fake API: no {plural} {namespace:?}/{name} to delete: {error}");
        }
    }

    /// The Events stored now (of both APIs, `events.k8s.io/v1` first; by namespace and name;
    /// patched series as patched): full objects, with kind and apiVersion.
    pub fn events(&self) -> Vec<Value> {
        let state = self.state();
        ["events.k8s.io", ""]
            .into_iter()
            .filter_map(|group| event_kind(group, "v1", "events"))
            .flat_map(|kind| state.objects_of(&kind.key(), None))
            .collect()
    }

    /// The current full object (with kind and apiVersion), if it exists.
    pub fn object(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let state = self.state();
        let kind = state.kinds.iter().find(|k| k.plural == plural)?;
        let key = (kind.key(), namespace.unwrap_or("").to_owned(), name.to_owned());
        state.objects.get(&key).cloned()
    }

    /// Every open watch connection ends with an error: in process the body yields an error,
    /// over TCP the connection is closed in the middle of the chunked body.
    pub fn drop_watches(&self) {
        self.state().drop_watches();
    }

    /// Until [`FakeApi::go_up`]: open watches are dropped, every LIST, WATCH and GET of an
    /// object answers 503 (discovery still answers); changes are recorded in the history.
    pub fn go_down(&self) {
        let mut state = self.state();
        state.down = true;
        state.drop_watches();
    }

    pub fn go_up(&self) {
        self.state().down = false;
    }

    /// The next `n` LIST or WATCH requests answer 500.
    pub fn fail_next(&self, n: usize) {
        self.state().fail_next = n;
    }

    /// Watches from a resourceVersion older than the current one now get a 410 `ERROR` event
    /// (too old resource version) and end; watches from the current one still work.
    pub fn expire_history(&self) {
        let mut state = self.state();
        state.expired_below = state.rv;
    }

    /// The next `n` writes (POST, PUT, PATCH, DELETE of objects and Events) answer 500.
    pub fn fail_next_writes(&self, n: usize) {
        self.state().fail_writes = n;
    }

    /// Every request so far (since [`FakeApi::reset_counts`]), as `"GET /path?query"`.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.iter().map(RecordedRequest::line).collect()
    }

    /// Every request so far (since [`FakeApi::reset_counts`]), in full.
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// How many requests so far (since [`FakeApi::reset_counts`]) had this method (any case;
    /// `"*"`: any) and a path starting with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| (method == "*" || r.method.eq_ignore_ascii_case(method)) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Forget the requests so far.
    pub fn reset_counts(&self) {
        self.state().requests.clear();
    }

    /// The watch connections open now (those whose client has gone are not counted).
    pub fn open_watches(&self) -> usize {
        self.state().watches.iter().filter(|w| !w.tx.is_closed()).count()
    }

    /// Resolves when at least `n` watch connections are open.
    pub async fn wait_for_watches(&self, n: usize) {
        loop {
            let opened = self.inner.watch_opened.notified();
            let mut opened = std::pin::pin!(opened);
            opened.as_mut().enable();
            if self.open_watches() >= n {
                return;
            }
            opened.await;
        }
    }

    /// The current resourceVersion (of the last change; 1 before any).
    pub fn resource_version(&self) -> u64 {
        self.state().rv
    }

    /// A kube client answered in process by this fake (no sockets; default namespace
    /// "default").
    pub fn client(&self) -> kube::Client {
        let inner = self.inner.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let inner = inner.clone();
            async move { Ok::<_, Infallible>(inner.receive(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Serve HTTP/1.1 on a free loopback port, on a thread of its own (with its own tokio
    /// runtime, so a test may block on another process meanwhile); stopped by
    /// [`FakeApi::stop`] or when the last clone of the fake is dropped.
    pub async fn listen(&self) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("fake API: bind a loopback port");
        listener.set_nonblocking(true).expect("fake API: non-blocking listener");
        let addr = listener.local_addr().expect("fake API: listener address");
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(());
        self.servers
            .shutdowns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shutdown);
        let inner = self.inner.clone();
        std::thread::Builder::new()
            .name(format!("fake-api-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake API: server runtime");
                runtime.block_on(serve(listener, inner, shutdown_rx));
            })
            .expect("fake API: server thread");
        addr
    }

    /// Stop the TCP servers (their connections are closed).
    pub fn stop(&self) {
        self.servers
            .shutdowns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Write `dir/kubeconfig` for the server at `addr`: cluster `http://127.0.0.1:PORT`, a user
    /// without credentials, the current context with namespace "default".
    pub fn kubeconfig(&self, addr: SocketAddr, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://{addr}
users:
- name: fake
  user: {{}}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
preferences: {{}}
"
        );
        std::fs::write(&path, text).expect("fake API: write the kubeconfig");
        path
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.shutdowns.get_mut().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// The accept loop of one TCP server.
async fn serve(listener: std::net::TcpListener, inner: Arc<Inner>, mut shutdown: tokio::sync::watch::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let inner = inner.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                let inner = inner.clone();
                async move { Ok::<_, Infallible>(inner.receive(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

impl State {
    /// The kind with this plural; panics if unknown or if the namespace does not fit its scope.
    fn kind_for(&self, plural: &str, namespace: Option<&str>) -> KindDef {
        let Some(kind) = self.kinds.iter().find(|k| k.plural == plural) else {
            panic!("fake API: unknown kind {plural} (add_kind first)");
        };
        assert_eq!(
            kind.namespaced,
            namespace.is_some(),
            "fake API: {plural} is {}namespaced",
            if kind.namespaced { "" } else { "not " }
        );
        kind.clone()
    }

    /// Record a change (at the current resourceVersion) and send it to the watches that want it.
    fn record(&mut self, kind: &KindDef, namespace: Option<&str>, event: &'static str, object: Value) {
        let line = event_line(event, &object);
        let kind_key = kind.key();
        self.watches.retain(|w| {
            if !w.wants(&kind_key, namespace) {
                return !w.tx.is_closed();
            }
            w.tx.send(Ok(line.clone())).is_ok()
        });
        self.history.push(Change {
            rv: self.rv,
            kind_key,
            namespace: namespace.map(str::to_owned),
            event,
            object,
        });
    }

    fn drop_watches(&mut self) {
        for watch in self.watches.drain(..) {
            let _ = watch.tx.send(Err(WatchDropped));
        }
    }
}

/// A watch event as one line of the stream.
fn event_line(event: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({ "type": event, "object": object })).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn status(code: StatusCode, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    })
}

fn json_response(code: StatusCode, body: &Value) -> Response<FakeBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(Full::new(bytes).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = code;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(code: StatusCode, reason: &str, message: &str) -> Response<FakeBody> {
    json_response(code, &status(code, reason, message))
}

fn not_found(path: &str) -> Response<FakeBody> {
    error_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("the server could not find the requested resource ({path})"),
    )
}

/// The query parameters (not percent-decoded: the ones read are plain).
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

fn is_true(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// What the routing of a request to a kind's resources reads.
struct ObjectRequest<'r> {
    method: &'r Method,
    query: &'r str,
    path: &'r str,
    content_type: Option<&'r str>,
    body: &'r [u8],
}

fn method_not_allowed(method: &Method, path: &str) -> Response<FakeBody> {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("the fake API server does not serve {method} {path}"),
    )
}

/// Where a request to a kind's resources goes.
struct Target<'p> {
    plural: &'p str,
    namespace: Option<&'p str>,
    name: Option<&'p str>,
    subresource: Option<&'p str>,
}

impl<'p> Target<'p> {
    /// The target of the path after `/api/{version}` or `/apis/{group}/{version}`.
    fn parse(rest: &[&'p str]) -> Option<Target<'p>> {
        let target = |plural, namespace, name, subresource| Target {
            plural,
            namespace,
            name,
            subresource,
        };
        Some(match *rest {
            [plural] => target(plural, None, None, None),
            [plural, name] => target(plural, None, Some(name), None),
            // A namespace's own subresources, not a kind named "status" in it.
            ["namespaces", name, subresource @ ("status" | "finalize")] => {
                target("namespaces", None, Some(name), Some(subresource))
            }
            ["namespaces", namespace, plural] => target(plural, Some(namespace), None, None),
            [plural, name, subresource] => target(plural, None, Some(name), Some(subresource)),
            ["namespaces", namespace, plural, name] => target(plural, Some(namespace), Some(name), None),
            ["namespaces", namespace, plural, name, subresource] => {
                target(plural, Some(namespace), Some(name), Some(subresource))
            }
            _ => return None,
        })
    }
}

/// The Events of `events.k8s.io/v1` and of core `v1`: served without being added or discovered.
fn event_kind(group: &str, version: &str, plural: &str) -> Option<KindDef> {
    let served = plural == "events" && version == "v1" && (group.is_empty() || group == "events.k8s.io");
    served.then(|| KindDef {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: "Event".to_owned(),
        plural: "events".to_owned(),
        namespaced: true,
        custom: false,
        status_subresource: false,
    })
}

fn object_key(kind: &KindDef, namespace: Option<&str>, name: &str) -> (String, String, String) {
    (kind.key(), namespace.unwrap_or("").to_owned(), name.to_owned())
}

/// A body that must be a JSON object.
fn parse_object(body: &[u8]) -> Result<Value, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(object @ Value::Object(_)) => Ok(object),
        Ok(_) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is not a JSON object",
        )),
        Err(error) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("the body is not JSON: {error}"),
        )),
    }
}

/// Set `field` of an object to `value`, or remove it when `value` is none or null.
fn set_or_remove(object: &mut Value, field: &str, value: Option<&Value>) {
    match value.filter(|v| !v.is_null()) {
        Some(value) => object[field] = value.clone(),
        None => {
            if let Some(fields) = object.as_object_mut() {
                fields.remove(field);
            }
        }
    }
}

/// One more `metadata.generation`, if the object has one.
fn bump_generation(object: &mut Value) {
    if let Some(generation) = object["metadata"]["generation"].as_u64() {
        object["metadata"]["generation"] = json!(generation + 1);
    }
}

fn finalizers(object: &Value) -> Vec<Value> {
    object["metadata"]["finalizers"].as_array().cloned().unwrap_or_default()
}

fn is_deleting(object: &Value) -> bool {
    object["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Apply a PATCH body, by its content type, to a copy of the stored object.
fn apply_patch(stored: &Value, content_type: Option<&str>, body: &[u8], custom: bool) -> Result<Value, Refusal> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let parse = || {
        serde_json::from_slice::<Value>(body).map_err(|error| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("the patch is not JSON: {error}"),
            )
        })
    };
    let mut patched = stored.clone();
    match media.as_str() {
        "application/merge-patch+json" => merge_patch(&mut patched, &parse()?),
        "application/strategic-merge-patch+json" if !custom => merge_patch(&mut patched, &parse()?),
        "application/json-patch+json" => json_patch(&mut patched, &parse()?)?,
        _ => {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format ({media}) - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json{}",
                    if custom {
                        ""
                    } else {
                        ", application/strategic-merge-patch+json"
                    }
                ),
            ));
        }
    }
    Ok(patched)
}

/// RFC 7386: objects merge key by key, null removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target_fields) = target {
        for (field, value) in fields {
            if value.is_null() {
                target_fields.remove(field);
            } else {
                merge_patch(target_fields.entry(field.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6902, all or nothing: a malformed patch is 400, an operation that fails is 422.
fn json_patch(document: &mut Value, patch: &Value) -> Result<(), Refusal> {
    let bad = |message: String| Refusal::new(StatusCode::BAD_REQUEST, "BadRequest", &message);
    let Some(operations) = patch.as_array() else {
        return Err(bad("a JSON patch is an array of operations".to_owned()));
    };
    let mut result = document.clone();
    for (at, operation) in operations.iter().enumerate() {
        let field = |name: &str| {
            operation
                .get(name)
                .ok_or_else(|| bad(format!("operation {at} has no {name:?}: {operation}")))
        };
        let text = |name: &str| {
            field(name)?
                .as_str()
                .ok_or_else(|| bad(format!("the {name:?} of operation {at} is not a string: {operation}")))
        };
        let op = text("op")?;
        let path = text("path")?;
        let applied = match op {
            "add" => pointer_add(&mut result, path, field("value")?.clone()),
            "remove" => pointer_remove(&mut result, path).map(drop),
            "replace" => {
                let value = field("value")?.clone();
                match result.pointer_mut(path) {
                    Some(target) => {
                        *target = value;
                        Ok(())
                    }
                    None => Err(format!("no {path} to replace")),
                }
            }
            "move" => {
                let from = text("from")?;
                if path.starts_with(&format!("{from}/")) {
                    Err(format!("cannot move {from} into itself ({path})"))
                } else {
                    pointer_remove(&mut result, from).and_then(|value| pointer_add(&mut result, path, value))
                }
            }
            "copy" => {
                let from = text("from")?;
                match result.pointer(from).cloned() {
                    Some(value) => pointer_add(&mut result, path, value),
                    None => Err(format!("no {from} to copy")),
                }
            }
            "test" => {
                let value = field("value")?;
                match result.pointer(path) {
                    Some(found) if found == value => Ok(()),
                    Some(found) => Err(format!("test failed: {path} is {found}, not {value}")),
                    None => Err(format!("test failed: no {path}")),
                }
            }
            other => return Err(bad(format!("unknown operation {other:?} (operation {at})"))),
        };
        if let Err(message) = applied {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                &format!("the JSON patch failed at operation {at} ({op}): {message}"),
            ));
        }
    }
    *document = result;
    Ok(())
}

/// A JSON pointer's parent and its last token (unescaped); an error for the whole document.
fn split_pointer(path: &str) -> Result<(&str, String), String> {
    let Some(at) = path.rfind('/') else {
        return Err(format!("{path:?} is not a JSON pointer to a member"));
    };
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not a JSON pointer"));
    }
    Ok((&path[..at], path[at + 1..].replace("~1", "/").replace("~0", "~")))
}

/// An array index of RFC 6901 (digits, no leading zero), below `bound`.
fn array_index(token: &str, bound: usize) -> Result<usize, String> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    match token.parse::<usize>() {
        Ok(index) if digits && (token == "0" || !token.starts_with('0')) && index < bound => Ok(index),
        _ => Err(format!("{token:?} is not an index below {bound}")),
    }
}

fn pointer_add(document: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *document = value;
        return Ok(());
    }
    let (parent, token) = split_pointer(path)?;
    match document.pointer_mut(parent) {
        Some(Value::Object(fields)) => {
            fields.insert(token, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let at = if token == "-" {
                items.len()
            } else {
                array_index(&token, items.len() + 1)?
            };
            items.insert(at, value);
            Ok(())
        }
        Some(other) => Err(format!("{parent} is {other}, not an object or an array")),
        None => Err(format!("no {parent} to add {path} to")),
    }
}

fn pointer_remove(document: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, token) = split_pointer(path)?;
    match document.pointer_mut(parent) {
        Some(Value::Object(fields)) => fields.remove(&token).ok_or_else(|| format!("no {path} to remove")),
        Some(Value::Array(items)) => {
            let at = array_index(&token, items.len())?;
            Ok(items.remove(at))
        }
        _ => Err(format!("no {path} to remove")),
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read a request's body, then answer it (both transports).
    async fn receive<B>(&self, request: Request<B>) -> Response<FakeBody>
    where
        B: Body,
        B::Error: fmt::Display,
    {
        let (parts, body) = request.into_parts();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match body.collect().await {
            Ok(collected) => self.handle(&parts.method, &parts.uri, content_type, &collected.to_bytes()),
            Err(error) => error_response(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("the fake API server could not read the body: {error}"),
            ),
        }
    }

    /// Answer one request.
    fn handle(&self, method: &Method, uri: &Uri, content_type: Option<String>, body: &[u8]) -> Response<FakeBody> {
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        let mut state = self.state();
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.to_owned(),
            query: uri.query().map(str::to_owned),
            content_type: content_type.clone(),
            body: serde_json::from_slice(body).ok(),
        });
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let request = ObjectRequest {
            method,
            query,
            path,
            content_type: content_type.as_deref(),
            body,
        };
        match segments.as_slice() {
            ["api"] | ["apis"] | ["api", _] | ["apis", _, _] if method != Method::GET => error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("discovery is only read, not {method}"),
            ),
            ["api"] => api_versions(&state),
            ["apis"] => api_group_list(&state),
            ["api", version] => resource_list(&state, "", version, path),
            ["apis", group, version] => resource_list(&state, group, version, path),
            ["api", version, rest @ ..] => self.resource(&mut state, "", version, rest, &request),
            ["apis", group, version, rest @ ..] => self.resource(&mut state, group, version, rest, &request),
            _ => not_found(path),
        }
    }

    fn resource(
        &self,
        state: &mut State,
        group: &str,
        version: &str,
        rest: &[&str],
        request: &ObjectRequest<'_>,
    ) -> Response<FakeBody> {
        let path = request.path;
        let Some(target) = Target::parse(rest) else {
            return not_found(path);
        };
        let found = state
            .kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == target.plural);
        let Some(kind) = found.cloned().or_else(|| event_kind(group, version, target.plural)) else {
            return not_found(path);
        };
        if target.namespace.is_some() && !kind.namespaced {
            return not_found(path);
        }
        if state.down {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "the fake API server is down",
            );
        }
        let method = request.method;
        if method != Method::GET && state.fail_writes > 0 {
            state.fail_writes -= 1;
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "an error on the fake API server (fail_next_writes)",
            );
        }
        let namespace = target.namespace;
        let Some(name) = target.name else {
            return match *method {
                Method::GET => {
                    if state.fail_next > 0 {
                        state.fail_next -= 1;
                        return error_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalError",
                            "an error on the fake API server (fail_next)",
                        );
                    }
                    if is_true(query_param(request.query, "watch")) {
                        self.watch(state, &kind, namespace, request.query)
                    } else {
                        list(state, &kind, namespace)
                    }
                }
                Method::POST if kind.namespaced && namespace.is_none() => not_found(path),
                Method::POST => match state.create_object(&kind, namespace, request.body) {
                    Ok(object) => json_response(StatusCode::CREATED, &object),
                    Err(refusal) => refusal.response(),
                },
                _ => method_not_allowed(method, path),
            };
        };
        if kind.namespaced && namespace.is_none() {
            return not_found(path);
        }
        let write = match target.subresource {
            None => Write::Object,
            Some("status") if kind.status_subresource => Write::Status,
            Some(_) => return not_found(path),
        };
        let outcome = match *method {
            Method::GET => state
                .objects
                .get(&object_key(&kind, namespace, name))
                .cloned()
                .ok_or_else(|| kind.not_found(name)),
            Method::PUT => state.put(&kind, namespace, name, write, request.body),
            Method::PATCH => state.patch(&kind, namespace, name, write, request.content_type, request.body),
            Method::DELETE if write == Write::Object => {
                let options = serde_json::from_slice(request.body).unwrap_or(Value::Null);
                state.delete(&kind, namespace, name, &options)
            }
            _ => return method_not_allowed(method, path),
        };
        match outcome {
            Ok(object) => json_response(StatusCode::OK, &object),
            Err(refusal) => refusal.response(),
        }
    }

    fn watch(&self, state: &mut State, kind: &KindDef, namespace: Option<&str>, query: &str) -> Response<FakeBody> {
        let timeout = match query_param(query, "timeoutSeconds").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match s.parse::<u64>() {
                Ok(seconds) => Some(seconds),
                Err(_) => return error_response(StatusCode::BAD_REQUEST, "BadRequest", "bad timeoutSeconds"),
            },
        };
        let kind_key = kind.key();
        let (tx, rx) = mpsc::unbounded_channel();
        let body = |rx| {
            let deadline = timeout.map(|s| Box::pin(tokio::time::sleep(Duration::from_secs(s))));
            let mut response = Response::new(WatchBody { rx, deadline }.boxed_unsync());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            response
        };
        match query_param(query, "resourceVersion").unwrap_or("") {
            // From "any": the current objects as ADDED, then the changes.
            "" | "0" => {
                for object in state.objects_of(&kind_key, namespace) {
                    let _ = tx.send(Ok(event_line("ADDED", &object)));
                }
                if is_true(query_param(query, "sendInitialEvents")) {
                    let bookmark = json!({
                        "kind": kind.kind,
                        "apiVersion": kind.api_version(),
                        "metadata": {
                            "resourceVersion": state.rv.to_string(),
                            "annotations": { "k8s.io/initial-events-end": "true" },
                        },
                    });
                    let _ = tx.send(Ok(event_line("BOOKMARK", &bookmark)));
                }
            }
            rv => {
                let Ok(from) = rv.parse::<u64>() else {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        &format!("invalid resource version: {rv}"),
                    );
                };
                if from < state.expired_below {
                    let gone = status(
                        StatusCode::GONE,
                        "Expired",
                        &format!("too old resource version: {from} ({})", state.expired_below),
                    );
                    let _ = tx.send(Ok(event_line("ERROR", &gone)));
                    drop(tx);
                    return body(rx);
                }
                for change in state.history.iter().filter(|c| c.rv > from) {
                    let wanted = change.kind_key == kind_key
                        && (namespace.is_none() || change.namespace.as_deref() == namespace);
                    if wanted {
                        let _ = tx.send(Ok(event_line(change.event, &change.object)));
                    }
                }
            }
        }
        state.watches.push(Watch {
            kind_key,
            namespace: namespace.map(str::to_owned),
            tx,
        });
        self.watch_opened.notify_waiters();
        body(rx)
    }
}

impl State {
    /// A PUT: the object as sent (a custom resource's with a resourceVersion).
    fn put(
        &mut self,
        kind: &KindDef,
        namespace: Option<&str>,
        name: &str,
        write: Write,
        body: &[u8],
    ) -> Result<Value, Refusal> {
        let proposed = parse_object(body)?;
        if !self.objects.contains_key(&object_key(kind, namespace, name)) {
            return Err(kind.not_found(name));
        }
        let unconditional = proposed["metadata"]["resourceVersion"]
            .as_str()
            .is_none_or(str::is_empty);
        if unconditional && kind.custom {
            return Err(kind.invalid(
                name,
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
            ));
        }
        self.update(kind, namespace, name, write, proposed)
    }

    /// A PATCH, by its content type.
    fn patch(
        &mut self,
        kind: &KindDef,
        namespace: Option<&str>,
        name: &str,
        write: Write,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Value, Refusal> {
        let Some(stored) = self.objects.get(&object_key(kind, namespace, name)) else {
            return Err(kind.not_found(name));
        };
        let proposed = apply_patch(stored, content_type, body, kind.custom)?;
        self.update(kind, namespace, name, write, proposed)
    }

    /// Write `proposed` over the stored object, as `write` allows; returns the object as stored
    /// (or as deleted, when the last finalizer of a deleted object went).
    fn update(
        &mut self,
        kind: &KindDef,
        namespace: Option<&str>,
        name: &str,
        write: Write,
        proposed: Value,
    ) -> Result<Value, Refusal> {
        let key = object_key(kind, namespace, name);
        let Some(stored) = self.objects.get(&key).cloned() else {
            return Err(kind.not_found(name));
        };
        if !proposed.is_object() {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "the object is not a JSON object",
            ));
        }
        let stored_rv = &stored["metadata"]["resourceVersion"];
        match &proposed["metadata"]["resourceVersion"] {
            Value::Null => {}
            Value::String(rv) if rv.is_empty() => {}
            rv if rv == stored_rv => {}
            _ => {
                return Err(kind.conflict(
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
        }
        let mut written = match write {
            Write::Status => {
                let mut written = stored.clone();
                set_or_remove(&mut written, "status", proposed.get("status"));
                written
            }
            Write::Object | Write::Any => {
                let mut written = proposed;
                written["apiVersion"] = stored["apiVersion"].clone();
                written["kind"] = stored["kind"].clone();
                if !written["metadata"].is_object() {
                    written["metadata"] = json!({});
                }
                for field in SERVER_METADATA {
                    set_or_remove(&mut written["metadata"], field, stored["metadata"].get(field));
                }
                if write == Write::Object && kind.status_subresource {
                    set_or_remove(&mut written, "status", stored.get("status"));
                }
                written
            }
        };
        written["metadata"]["resourceVersion"] = stored_rv.clone();
        let deleting = is_deleting(&stored);
        if deleting {
            let old = finalizers(&stored);
            let new: Vec<Value> = finalizers(&written).into_iter().filter(|f| !old.contains(f)).collect();
            if !new.is_empty() {
                return Err(kind.invalid(
                    name,
                    &format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {}",
                        Value::Array(new)
                    ),
                ));
            }
        }
        if written == stored {
            return Ok(stored);
        }
        if written.get("spec") != stored.get("spec") {
            bump_generation(&mut written);
        }
        self.rv += 1;
        written["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if deleting && finalizers(&written).is_empty() {
            self.objects.remove(&key);
            self.record(kind, namespace, "DELETED", written.clone());
        } else {
            self.objects.insert(key, written.clone());
            self.record(kind, namespace, "MODIFIED", written.clone());
        }
        Ok(written)
    }

    /// A DELETE (`options`: the DeleteOptions sent, or null): at once without finalizers, else a
    /// `deletionTimestamp`. Returns the object as deleted or as marked.
    fn delete(
        &mut self,
        kind: &KindDef,
        namespace: Option<&str>,
        name: &str,
        options: &Value,
    ) -> Result<Value, Refusal> {
        let key = object_key(kind, namespace, name);
        let Some(mut object) = self.objects.get(&key).cloned() else {
            return Err(kind.not_found(name));
        };
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            let Some(expected) = options["preconditions"][field].as_str() else {
                continue;
            };
            let actual = object["metadata"][field].as_str().unwrap_or("");
            if expected != actual {
                return Err(kind.conflict(
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {expected}, {label} in object meta: {actual}"
                    ),
                ));
            }
        }
        if !finalizers(&object).is_empty() {
            if is_deleting(&object) {
                return Ok(object);
            }
            bump_generation(&mut object);
            object["metadata"]["deletionTimestamp"] = json!(DELETION_TIMESTAMP);
            object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            self.rv += 1;
            object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
            self.objects.insert(key, object.clone());
            self.record(kind, namespace, "MODIFIED", object.clone());
            return Ok(object);
        }
        self.objects.remove(&key);
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(kind, namespace, "DELETED", object.clone());
        Ok(object)
    }

    /// A POST to a collection: the object as sent, with the server's metadata (`generateName`
    /// served; `status` dropped with the status subresource).
    fn create_object(&mut self, kind: &KindDef, namespace: Option<&str>, body: &[u8]) -> Result<Value, Refusal> {
        let mut object = parse_object(body)?;
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let name = match object["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => match object["metadata"]["generateName"].as_str() {
                Some(prefix) => {
                    self.uids += 1;
                    format!("{prefix}{:05x}", self.uids)
                }
                None => {
                    return Err(kind.invalid("", "metadata.name: Required value: name or generateName is required"));
                }
            },
        };
        let key = object_key(kind, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(kind.already_exists(&name));
        }
        self.uids += 1;
        self.rv += 1;
        let metadata = &mut object["metadata"];
        metadata["name"] = json!(name);
        set_or_remove(metadata, "namespace", namespace.map(|ns| json!(ns)).as_ref());
        metadata["uid"] = json!(format!("uid-{}", self.uids));
        metadata["resourceVersion"] = json!(self.rv.to_string());
        metadata["creationTimestamp"] = json!(CREATION_TIMESTAMP);
        metadata["generation"] = json!(1);
        set_or_remove(metadata, "deletionTimestamp", None);
        set_or_remove(metadata, "deletionGracePeriodSeconds", None);
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        if kind.status_subresource {
            set_or_remove(&mut object, "status", None);
        }
        self.objects.insert(key, object.clone());
        self.record(kind, namespace, "ADDED", object.clone());
        Ok(object)
    }

    /// The current objects of a kind (in one namespace, or all), sorted by namespace and name.
    fn objects_of(&self, kind_key: &str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), _)| k == kind_key && namespace.is_none_or(|n| n == ns))
            .map(|(_, object)| object.clone())
            .collect()
    }
}

fn list(state: &State, kind: &KindDef, namespace: Option<&str>) -> Response<FakeBody> {
    let items: Vec<Value> = state
        .objects_of(&kind.key(), namespace)
        .into_iter()
        .map(|mut object| {
            // A real server leaves `kind` and `apiVersion` out of the items of built-in kinds'
            // lists; custom resources' items keep them.
            if let Some(fields) = object.as_object_mut().filter(|_| !kind.custom) {
                fields.remove("kind");
                fields.remove("apiVersion");
            }
            object
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": { "resourceVersion": state.rv.to_string() },
            "items": items,
        }),
    )
}

fn api_versions(state: &State) -> Response<FakeBody> {
    let mut versions: Vec<&str> = Vec::new();
    for kind in state.kinds.iter().filter(|k| k.group.is_empty()) {
        if !versions.contains(&kind.version.as_str()) {
            versions.push(&kind.version);
        }
    }
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": versions,
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443" }],
        }),
    )
}

fn api_group_list(state: &State) -> Response<FakeBody> {
    // Groups in the order added, each with its versions in the order added.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for kind in state.kinds.iter().filter(|k| !k.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == kind.group) {
            Some((_, versions)) => {
                if !versions.contains(&kind.version.as_str()) {
                    versions.push(&kind.version);
                }
            }
            None => groups.push((&kind.group, vec![&kind.version])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
                .collect();
            json!({ "name": group, "versions": versions, "preferredVersion": versions[0] })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }),
    )
}

fn resource_list(state: &State, group: &str, version: &str, path: &str) -> Response<FakeBody> {
    let mut resources: Vec<Value> = Vec::new();
    for k in state.kinds.iter().filter(|k| k.group == group && k.version == version) {
        resources.push(json!({
            "name": k.plural,
            "singularName": k.kind.to_lowercase(),
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": VERBS,
        }));
        if k.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    if resources.is_empty() {
        return not_found(path);
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }),
    )
}

/// The streaming body of a watch: the queued event lines, then live ones, until the fake drops
/// the watch (an error), forgets it (the end) or `timeoutSeconds` passes (the end).
struct WatchBody {
    rx: mpsc::UnboundedReceiver<WatchItem>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(line))) => return Poll::Ready(Some(Ok(Frame::data(line)))),
            Poll::Ready(Some(Err(dropped))) => return Poll::Ready(Some(Err(Box::new(dropped)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        match self.deadline.as_mut().map(|deadline| deadline.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}
