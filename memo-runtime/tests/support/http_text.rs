//! Reading what an HTTP/1.1 server answered, and the samples of a Prometheus text exposition: for
//! the tests that ask the liveness endpoint (memo-runtime's in process, the examples' of processes).
#![allow(dead_code)]

/// The status code and the body of a whole response (sent with `Connection: close`).
pub fn response(text: &str) -> (u16, String) {
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `series` (`name{labels}` as the text spells it), if it is there.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}
