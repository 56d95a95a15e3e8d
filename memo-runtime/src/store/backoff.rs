//! Waiting for something another process holds: sleeps that double up to a cap, with jitter so
//! that waiters started together do not all ask again at the same instant.

use std::time::Duration;

pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `first`, doubles up to `cap`.
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        Backoff { next: first, cap }
    }

    /// Sleeps for the next delay: between half and all of it.
    pub(crate) async fn wait(&mut self) {
        let full = self.next.as_micros().max(2) as u64;
        let delay = full / 2 + super::token::jitter(full / 2);
        tokio::time::sleep(Duration::from_micros(delay)).await;
        self.next = (self.next * 2).min(self.cap);
    }
}
