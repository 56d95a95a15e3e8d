//! Asking a process's liveness endpoint, as a probe and Prometheus do: a plain HTTP/1.1 GET on
//! loopback, and the values of the metrics it serves.

#[path = "../../../memo-runtime/tests/support/http_text.rs"]
pub mod http_text;

use std::io::{Read, Write};
use std::time::Duration;

/// `GET path` on `address`: the status code and the body.
pub fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(http_text::response(&response))
}
