//! The liveness endpoint (kopf's `--liveness`): an HTTP server on its own address answering
//! `GET /healthz` from the operator's [`Health`] and `GET /metrics` from its [`Metrics`].

use crate::health::Health;
use crate::metrics::Metrics;
use crate::{Error, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running endpoint; dropping it stops the server and closes its connections.
pub(crate) struct Endpoint {
    server: JoinHandle<()>,
}

impl Endpoint {
    /// Listens on `address` (`HOST:PORT`; port 0 picks a free one, logged) and serves.
    pub(crate) async fn start(address: &str, health: Health, metrics: Metrics) -> Result<Endpoint> {
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
        let server = tokio::spawn(serve(listener, health, metrics));
        Ok(Endpoint { server })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // The connections are tasks of the server's `JoinSet`: aborting it drops them all.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, health: Health, metrics: Metrics) {
    let mut connections = JoinSet::new();
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
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (health, metrics) = (health.clone(), metrics.clone());
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = answer(&request, &health, &metrics);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            // A client that goes away mid-request is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
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
