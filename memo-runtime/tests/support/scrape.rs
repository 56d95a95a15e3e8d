//! Asking an operator's liveness endpoint, as a probe and Prometheus do: a plain HTTP/1.1 GET on
//! loopback, and the values of the metrics it serves.
#![allow(dead_code)]

#[path = "http_text.rs"]
mod http_text;

pub use http_text::sample;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A free loopback address (`127.0.0.1:PORT`): bound, then released for the operator to take.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound address").to_string()
}

/// `GET path` on `address`: the status code and the body.
pub async fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))??;
    Ok(http_text::response(&response))
}

/// Asks `path` until `done` accepts the answer (up to 20 s); returns that answer.
pub async fn wait_for(address: &str, path: &str, what: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let mut last = None;
    for _ in 0..2000 {
        match get(address, path).await {
            Ok((status, body)) if done(status, &body) => return (status, body),
            Ok(answer) => last = Some(Ok(answer)),
            Err(err) => last = Some(Err(err)),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("waited 20 s for {what} on {address}{path}; last answer: {last:?}");
}
