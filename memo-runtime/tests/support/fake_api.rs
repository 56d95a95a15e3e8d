//! A fake Kubernetes API server for the tests of the Kubernetes source: classic discovery, LIST
//! and WATCH of any added kind, scripted changes, outages, failures and expired histories.
//!
//! One shared state, two transports: [`FakeApi::client`] answers in process (no sockets, works
//! under tokio's paused time) and [`FakeApi::listen`] serves HTTP/1.1 on a loopback port, with
//! [`FakeApi::kubeconfig`] writing a kubeconfig for it (for another process).
//!
//! Like a real API server: LIST items have no `kind`/`apiVersion`, watch events carry the full
//! object, a watch from a resourceVersion older than the expired mark gets a 410 `ERROR` event
//! and ends, every change bumps one global resourceVersion.
//!
//! Not served: label/field selectors (ignored), `limit`/`continue` (everything in one page),
//! writes (405), subresources (404), BOOKMARK events (only the end-of-initial-events one of
//! `sendInitialEvents=true`).
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

const VERBS: [&str; 7] = ["get", "list", "watch", "create", "update", "patch", "delete"];

/// A kind served by the fake.
#[derive(Clone, Debug)]
struct KindDef {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
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
    requests: Vec<String>,
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
    /// replaced.
    pub fn add_kind(&self, group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) {
        let def = KindDef {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
        };
        let mut state = self.state();
        match state.kinds.iter_mut().find(|k| k.key() == def.key()) {
            Some(existing) => *existing = def,
            None => state.kinds.push(def),
        }
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

    /// [`FakeApi::create`] with `metadata` fields of the test's own (labels, managed fields, a uid
    /// of its choice), merged into name, resourceVersion and creationTimestamp; a null field is
    /// left out, so that `{"uid": null}` makes an object without a uid, as no real server would.
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

    /// Replace the spec of an existing object (a MODIFIED event). Panics if there is none.
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
        object["spec"] = spec;
        let object = object.clone();
        state.record(&kind, namespace, "MODIFIED", object);
    }

    /// Delete an existing object (a DELETED event with the last object and a new
    /// resourceVersion). Panics if there is none.
    pub fn delete(&self, plural: &str, namespace: Option<&str>, name: &str) {
        let mut state = self.state();
        let kind = state.kind_for(plural, namespace);
        let key = (kind.key(), namespace.unwrap_or("").to_owned(), name.to_owned());
        let Some(mut object) = state.objects.remove(&key) else {
            panic!("fake API: no {plural} {namespace:?}/{name} to delete");
        };
        state.rv += 1;
        object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        state.record(&kind, namespace, "DELETED", object);
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

    /// Every request so far, as `"GET /path?query"`.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
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
            let response = inner.handle(request.method(), request.uri());
            std::future::ready(Ok::<_, Infallible>(response))
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
                let response = inner.handle(request.method(), request.uri());
                std::future::ready(Ok::<_, Infallible>(response))
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

/// Where a request to a kind's resources goes.
struct Target<'p> {
    plural: &'p str,
    namespace: Option<&'p str>,
    name: Option<&'p str>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answer one request (both transports).
    fn handle(&self, method: &Method, uri: &Uri) -> Response<FakeBody> {
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        let mut state = self.state();
        let line = match uri.query() {
            Some(q) => format!("{method} {path}?{q}"),
            None => format!("{method} {path}"),
        };
        state.requests.push(line);
        if method != Method::GET {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("the fake API server only serves GET, not {method}"),
            );
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["api"] => api_versions(&state),
            ["apis"] => api_group_list(&state),
            ["api", version] => resource_list(&state, "", version, path),
            ["apis", group, version] => resource_list(&state, group, version, path),
            ["api", version, rest @ ..] => self.resource(&mut state, "", version, rest, query, path),
            ["apis", group, version, rest @ ..] => self.resource(&mut state, group, version, rest, query, path),
            _ => not_found(path),
        }
    }

    fn resource(
        &self,
        state: &mut State,
        group: &str,
        version: &str,
        rest: &[&str],
        query: &str,
        path: &str,
    ) -> Response<FakeBody> {
        let target = match *rest {
            [plural] => Target {
                plural,
                namespace: None,
                name: None,
            },
            [plural, name] => Target {
                plural,
                namespace: None,
                name: Some(name),
            },
            ["namespaces", namespace, plural] => Target {
                plural,
                namespace: Some(namespace),
                name: None,
            },
            ["namespaces", namespace, plural, name] => Target {
                plural,
                namespace: Some(namespace),
                name: Some(name),
            },
            _ => return not_found(path),
        };
        let found = state
            .kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == target.plural);
        let Some(kind) = found.cloned() else {
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
        if let Some(name) = target.name {
            if kind.namespaced && target.namespace.is_none() {
                return not_found(path);
            }
            let key = (kind.key(), target.namespace.unwrap_or("").to_owned(), name.to_owned());
            return match state.objects.get(&key) {
                Some(object) => json_response(StatusCode::OK, object),
                None => error_response(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{} \"{name}\" not found", kind.plural),
                ),
            };
        }
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "an error on the fake API server (fail_next)",
            );
        }
        if is_true(query_param(query, "watch")) {
            self.watch(state, &kind, target.namespace, query)
        } else {
            list(state, &kind, target.namespace)
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
            if let Some(fields) = object.as_object_mut() {
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
    let resources: Vec<Value> = state
        .kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            json!({
                "name": k.plural,
                "singularName": k.kind.to_lowercase(),
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": VERBS,
            })
        })
        .collect();
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
