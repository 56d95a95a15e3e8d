//! The liveness endpoint (kopf's `--liveness`): an HTTP server on its own address answering
//! `GET /healthz` from the operator's [`Health`] and `GET /metrics` from its [`Metrics`].
//!
//! The endpoint is reachable by whatever can reach the pod, so it must not be held open by clients
//! that connect and never finish: a connection that has not sent a whole request header
//! [`HEADER_READ_TIMEOUT`] after it opened, or after its previous response, is closed; and at most
//! [`MAX_CONNECTIONS`] are open at once, a new one closing the connection that went longest without
//! a request, so that a probe still gets through while idle or half-open connections pile up.

use crate::api::error::{Error, Result};
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a client has to send a whole request header. hyper starts this clock when it begins
/// to read a request: when the connection opens, and again when a keep-alive connection has sent
/// its response. So it also bounds the idle time between requests: a probe or a scrape sends its
/// request at once, and a connection quiet for this long is not worth a file descriptor.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections are served at once. A kubelet and a Prometheus or two need a handful;
/// the bound keeps the process below its open-file limit whatever clients do.
const MAX_CONNECTIONS: usize = 64;

/// The bounds on the endpoint's clients: [`HEADER_READ_TIMEOUT`] and [`MAX_CONNECTIONS`], shorter
/// or smaller in tests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// A running endpoint; dropping it stops the server and closes its connections.
pub(crate) struct Endpoint {
    server: JoinHandle<()>,
}

impl Endpoint {
    /// Listens on `address` (`HOST:PORT`; port 0 picks a free one, logged) and serves.
    pub(crate) async fn start(address: &str, health: Health, metrics: Metrics) -> Result<Endpoint> {
        Endpoint::start_with(address, health, metrics, Limits::default()).await
    }

    /// [`Endpoint::start`] with other limits on the clients.
    pub(crate) async fn start_with(
        address: &str,
        health: Health,
        metrics: Metrics,
        limits: Limits,
    ) -> Result<Endpoint> {
        let listener = TcpListener::bind(address).await.map_err(|err| {
            Error::Io(std::io::Error::new(
                err.kind(),
                format!("cannot serve the liveness endpoint on {address}: {err}"),
            ))
        })?;
        let bound = listener.local_addr().map_err(Error::Io)?;
        tracing::info!(
            target: "memo",
            address = %bound,
            "liveness endpoint on http://{bound}/healthz, metrics on http://{bound}/metrics"
        );
        let server = tokio::spawn(serve(listener, health, metrics, limits));
        Ok(Endpoint { server })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // The connections are tasks of the server's `JoinSet`: aborting it drops them all.
        self.server.abort();
    }
}

/// An open connection, as the accept loop knows it.
struct Open {
    task: AbortHandle,
    /// The value of the server's clock when the connection opened or last received a request.
    last_request: Arc<AtomicU64>,
}

async fn serve(listener: TcpListener, health: Health, metrics: Metrics, limits: Limits) {
    let mut connections = JoinSet::new();
    let mut open: Vec<Open> = Vec::with_capacity(limits.max_connections);
    // A logical clock rather than the time: only the order of the events matters, and it cannot
    // tie or go backwards.
    let clock = Arc::new(AtomicU64::new(0));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(target: "memo", "the liveness endpoint cannot accept a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        open.retain(|connection| !connection.task.is_finished());
        if open.len() >= limits.max_connections.max(1) {
            // Refusing the new connection would let a few clients that never finish a request
            // lock the probes out; the one that went longest without a request is the likeliest
            // to be such a client, or an idle keep-alive its owner will open again if it needs.
            let oldest = (0..open.len()).min_by_key(|&index| open[index].last_request.load(Ordering::Relaxed));
            if let Some(oldest) = oldest {
                // Closed at once, not gracefully: it has no request in progress worth finishing,
                // an answer takes no time to make.
                open.swap_remove(oldest).task.abort();
            }
        }
        let last_request = Arc::new(AtomicU64::new(clock.fetch_add(1, Ordering::Relaxed)));
        let (health, metrics) = (health.clone(), metrics.clone());
        let (connection_clock, connection_last_request) = (clock.clone(), last_request.clone());
        let task = connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                connection_last_request.store(connection_clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
                let response = answer(&request, &health, &metrics);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            // A client that goes away mid-request, or takes too long to send one, is its own
            // business.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        open.push(Open { task, last_request });
    }
}

fn answer(request: &Request<Incoming>, health: &Health, metrics: &Metrics) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match request.uri().path() {
        "/healthz" => {
            let verdict = health.check();
            let status = if verdict.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(status, "text/plain; charset=utf-8", verdict.reason + "\n")
        }
        "/metrics" => {
            metrics.source_connected.set(i64::from(health.source_connected()));
            respond(StatusCode::OK, OPENMETRICS, metrics.encode())
        }
        path => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no {path} here: try /healthz or /metrics\n"),
        ),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const HALF_A_HEADER: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

    /// An endpoint of a running operator on a free loopback port, with `limits`.
    async fn endpoint(limits: Limits) -> (Endpoint, String) {
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .to_string();
        let health = Health::default();
        health.running(Vec::new());
        let endpoint = Endpoint::start_with(&address, health, Metrics::default(), limits)
            .await
            .expect("the endpoint starts");
        (endpoint, address)
    }

    /// A connection that has sent half a request header, and waits.
    async fn half_open(address: &str) -> TcpStream {
        let mut stream = TcpStream::connect(address).await.expect("a connection");
        stream.write_all(HALF_A_HEADER).await.expect("half a header sent");
        stream
    }

    /// `GET /healthz` on a keep-alive connection: the whole response.
    async fn healthz(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("a request sent");
        let mut response = Vec::new();
        // The bodies end their only line; the headers come first.
        while !(response.ends_with(b"\n") && response.windows(4).any(|window| window == b"\r\n\r\n")) {
            let mut chunk = [0; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("an answer within 5 s")
                .expect("an answer");
            assert_ne!(
                read,
                0,
                "closed before answering: {}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&chunk[..read]);
        }
        String::from_utf8(response).expect("a text answer")
    }

    /// Whether the server closes `stream` within 5 s (the end of the stream, or a reset).
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await,
            Ok(Ok(_) | Err(_))
        )
    }

    /// Whether `stream` is still open: nothing comes from it for a moment.
    async fn still_open(stream: &mut TcpStream) -> bool {
        let mut byte = [0];
        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_header_not_sent_in_time_closes_the_connection() {
        let (_endpoint, address) = endpoint(Limits {
            header_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        })
        .await;
        let mut stream = half_open(&address).await;
        assert!(closed(&mut stream).await, "a half-sent header is held open");

        // Sent a byte at a time, the header still has to be whole in time.
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let mut sent_it_all = true;
        for byte in HALF_A_HEADER.iter().cycle().take(200) {
            if stream.write_all(&[*byte]).await.is_err() {
                sent_it_all = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !sent_it_all || closed(&mut stream).await,
            "a trickled header is held open"
        );
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let (_endpoint, address) = endpoint(Limits {
            header_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        })
        .await;
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let response = healthz(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(closed(&mut stream).await, "an idle keep-alive connection is held open");
    }

    #[tokio::test]
    async fn at_the_cap_the_connection_longest_without_a_request_makes_room() {
        let (_endpoint, address) = endpoint(Limits {
            header_read_timeout: Duration::from_secs(60),
            max_connections: 2,
        })
        .await;
        // Opened first, but asks after the other connected.
        let mut asking = TcpStream::connect(&address).await.unwrap();
        let mut waiting = half_open(&address).await;
        assert!(healthz(&mut asking).await.starts_with("HTTP/1.1 200 OK"));

        let mut probe = TcpStream::connect(&address).await.unwrap();
        let response = healthz(&mut probe).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(closed(&mut waiting).await, "the connection without a request is kept");
        assert!(
            still_open(&mut asking).await,
            "the connection that asked last is closed"
        );
        let response = healthz(&mut asking).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    }
}
