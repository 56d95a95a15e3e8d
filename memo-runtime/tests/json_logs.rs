//! What the watch-stream reader logs for input it skips: the line, the column, and why. (Its own
//! test binary: capturing `tracing` output is reliable only without other tests running at once.)

mod common;

use common::*;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Yields its bytes a few at a time, then fails like a dropped connection.
struct FailingAtEnd {
    data: Vec<u8>,
    at: usize,
}

impl AsyncRead for FailingAtEnd {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.at == self.data.len() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset")));
        }
        let end = (self.at + 7).min(self.data.len()).min(self.at + buf.remaining());
        buf.put_slice(&self.data[self.at..end]);
        self.at = end;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn skipped_input_and_read_errors_are_logged_with_their_position() {
    let (_guard, logs) = capture_logs();
    let input = concat!(
        r#"{"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "a", "namespace": "default"}}}"#,
        "\n",
        r#"{"type": "BOOKMARK", "object": {}}"#,
        "\n",
        r#"{"type": "ERROR", "object": {"message": "gone"}}"#,
        "\n",
        "garbage here\n",
    );
    let reader = FailingAtEnd {
        data: input.as_bytes().to_vec(),
        at: 0,
    };
    let mut source = memo_runtime::source::json_stream(reader);
    let mut events = 0;
    while source.next().await.is_some() {
        events += 1;
    }
    assert_eq!(events, 1);
    let lines = entries(&logs);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].starts_with("DEBUG") && lines[0].contains("line=2") && lines[0].contains("BOOKMARK"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("WARN") && lines[1].contains("line=3") && lines[1].contains("ERROR event: gone"),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("ERROR")
            && lines[2].contains("line=4")
            && lines[2].contains("column=1")
            && lines[2].contains("expected"),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with("ERROR") && lines[3].contains("read failed") && lines[3].contains("connection reset"),
        "{lines:#?}"
    );
}
