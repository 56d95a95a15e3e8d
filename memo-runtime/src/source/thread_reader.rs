//! A blocking reader turned into an `AsyncRead` by a thread of its own, which nobody ever waits
//! for: dropping the `ThreadReader` abandons the thread, blocked or not.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Bytes per read on the thread.
const CHUNK: usize = 64 * 1024;
/// Chunks read ahead of the consumer: enough to keep the parser busy, little enough to bound
/// memory when the consumer is slow.
const AHEAD: usize = 4;

pub(crate) struct ThreadReader {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    done: bool,
}

impl ThreadReader {
    /// Reads what `open` gives, on a thread of its own; `open` runs there too, since opening a
    /// FIFO blocks until a writer comes.
    pub(crate) fn spawn<R, O>(open: O) -> Self
    where
        R: Read,
        O: FnOnce() -> io::Result<R> + Send + 'static,
    {
        let (sender, chunks) = mpsc::channel(AHEAD);
        let read = move || {
            let mut reader = match open() {
                Ok(reader) => reader,
                Err(err) => {
                    let _ = sender.blocking_send(Err(err));
                    return;
                }
            };
            loop {
                let mut chunk = vec![0; CHUNK];
                let message = match reader.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        chunk.truncate(n);
                        Ok(chunk)
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => Err(err),
                };
                let failed = message.is_err();
                // The consumer is gone (the operator stopped): nothing left to do.
                if sender.blocking_send(message).is_err() || failed {
                    return;
                }
            }
        };
        let spawned = std::thread::Builder::new().name("memo-source".into()).spawn(read);
        let mut this = ThreadReader {
            chunks,
            current: Vec::new(),
            at: 0,
            done: false,
        };
        if let Err(err) = spawned {
            // The channel's sender went with the closure; report why there is no input.
            let (sender, chunks) = mpsc::channel(1);
            let _ = sender.try_send(Err(io::Error::new(
                err.kind(),
                format!("cannot start the reading thread: {err}"),
            )));
            this.chunks = chunks;
        }
        this
    }
}

impl AsyncRead for ThreadReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.at == this.current.len() {
            if this.done {
                return Poll::Ready(Ok(()));
            }
            match this.chunks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.current = chunk;
                    this.at = 0;
                }
                Poll::Ready(Some(Err(err))) => {
                    this.done = true;
                    return Poll::Ready(Err(err));
                }
            }
        }
        let n = buf.remaining().min(this.current.len() - this.at);
        buf.put_slice(&this.current[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    struct FailAfter(Vec<u8>);

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[tokio::test]
    async fn bytes_then_the_end() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let input = data.clone();
        let mut reader = ThreadReader::spawn(move || Ok(io::Cursor::new(input)));
        let mut read = Vec::new();
        reader.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, data);
    }

    #[tokio::test]
    async fn a_failed_open_is_the_first_read_error() {
        let mut reader = ThreadReader::spawn(|| std::fs::File::open("/nonexistent/memo-test"));
        let mut read = Vec::new();
        let err = reader.read_to_end(&mut read).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn bytes_then_the_error() {
        let mut reader = ThreadReader::spawn(|| Ok(FailAfter(b"abc".to_vec())));
        let mut read = Vec::new();
        let err = reader.read_to_end(&mut read).await.unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(read, b"abc");
    }
}
