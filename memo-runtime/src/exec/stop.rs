//! How an operator stops: why (the source ended or failed, a signal), the grace period that
//! bounds a graceful stop, and the second signal that forces one.
//!
//! A graceful stop has three steps, each visible to the parts that need it: `requested` (no new
//! work starts; what runs may finish), `abandoned` (the grace period is over: what still runs is
//! cancelled or left behind), and `forced` (a second signal: stop now, skip everything).

use crate::api::signal::Signal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The stop of one operator run, shared by everything that takes part in it.
#[derive(Clone, Default)]
pub(crate) struct Stop(Arc<Inner>);

#[derive(Default)]
struct Inner {
    requested: CancellationToken,
    /// The same as `requested`, read on every event: the token's own check takes a lock.
    requested_flag: AtomicBool,
    abandoned: CancellationToken,
    forced: CancellationToken,
    signal: Mutex<Option<Signal>>,
    forced_by: OnceLock<Signal>,
    /// Events that were read but never started because of the stop.
    dropped_events: AtomicUsize,
}

impl Stop {
    /// Asks for a graceful stop (the first request wins; later ones change nothing).
    pub(crate) fn request(&self) {
        self.0.requested_flag.store(true, Ordering::Release);
        self.0.requested.cancel();
    }

    #[inline]
    pub(crate) fn is_requested(&self) -> bool {
        self.0.requested_flag.load(Ordering::Acquire)
    }

    pub(crate) async fn requested(&self) {
        self.0.requested.cancelled().await;
    }

    /// The grace period of the event handlers is over: what still runs is cancelled or left
    /// behind.
    pub(crate) fn abandon(&self) {
        self.request();
        self.0.abandoned.cancel();
    }

    pub(crate) async fn abandoned(&self) {
        self.0.abandoned.cancelled().await;
    }

    pub(crate) async fn forced(&self) -> Signal {
        self.0.forced.cancelled().await;
        self.0.forced_by.get().copied().unwrap_or(Signal::Terminate)
    }

    /// The signal that asked for the stop, if one did.
    pub(crate) fn signal(&self) -> Option<Signal> {
        *self.0.signal.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn count_dropped(&self, events: usize) {
        if events > 0 {
            self.0.dropped_events.fetch_add(events, Ordering::Relaxed);
        }
    }

    pub(crate) fn dropped_events(&self) -> usize {
        self.0.dropped_events.load(Ordering::Relaxed)
    }

    /// A signal arrived: the first asks for a graceful stop, the next forces it.
    pub(crate) fn on_signal(&self, signal: Signal, grace: Duration) {
        let first = {
            let mut recorded = self.0.signal.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let first = recorded.is_none();
            recorded.get_or_insert(signal);
            first
        };
        if first {
            tracing::info!(
                target: "memo",
                signal = signal.name(),
                "{signal} received; stopping gracefully: handlers that run may finish within {}, \
                 no new event starts (send it again to stop at once)",
                humanize(grace),
            );
            self.request();
        } else {
            tracing::warn!(target: "memo", signal = signal.name(), "{signal} received again; stopping at once");
            let _ = self.0.forced_by.set(signal);
            self.0.forced.cancel();
        }
    }

    /// Turns SIGINT and SIGTERM into [`Stop::on_signal`] until the task is aborted.
    pub(crate) async fn listen_for_signals(self, grace: Duration) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(mut interrupt), Ok(mut terminate)) => loop {
                    let signal = tokio::select! {
                        Some(()) = interrupt.recv() => Signal::Interrupt,
                        Some(()) = terminate.recv() => Signal::Terminate,
                        else => return,
                    };
                    self.on_signal(signal, grace);
                },
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(target: "memo", "cannot listen for signals ({err}); stop the operator by ending its source");
                }
            }
        }
        #[cfg(not(unix))]
        {
            while tokio::signal::ctrl_c().await.is_ok() {
                self.on_signal(Signal::Interrupt, grace);
            }
        }
    }
}

/// How a supervised piece of work came to an end.
pub(crate) enum Supervised<T> {
    /// It finished (a stop may have been requested meanwhile).
    Finished(T),
    /// A stop was requested and the grace period ran out first; it was told to abandon its work.
    Abandoned,
    /// A second signal forced the stop.
    Forced(Signal),
    /// It ended without an answer (its thread panicked).
    Lost,
}

impl Stop {
    /// Waits for `work`. Its grace period starts when a stop is requested, or at once with
    /// `bounded_now`; when it runs out, `abandon` is called (to cancel what can be cancelled)
    /// and the work is no longer waited for. A second signal ends the wait at once.
    pub(crate) async fn supervise<T>(
        &self,
        work: tokio::sync::oneshot::Receiver<T>,
        grace: Duration,
        bounded_now: bool,
        abandon: impl FnOnce(),
    ) -> Supervised<T> {
        tokio::pin!(work);
        let mut deadline = bounded_now.then(|| tokio::time::Instant::now() + grace);
        loop {
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                signal = self.forced() => return Supervised::Forced(signal),
                result = &mut work => return result.map_or(Supervised::Lost, Supervised::Finished),
                () = self.requested(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + grace);
                }
                () = expired => {
                    abandon();
                    return Supervised::Abandoned;
                }
            }
        }
    }
}

/// `30s`, `1.5s`, `250ms`: a duration as a person writes it.
pub(crate) fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }

    #[tokio::test(start_paused = true)]
    async fn work_is_abandoned_after_the_grace_period_and_a_second_signal_forces() {
        let stop = Stop::default();
        let (_keep, never) = tokio::sync::oneshot::channel::<()>();
        stop.on_signal(Signal::Terminate, Duration::from_secs(5));
        assert!(stop.is_requested());
        let mut abandoned = false;
        let outcome = stop
            .supervise(never, Duration::from_secs(5), false, || abandoned = true)
            .await;
        assert!(matches!(outcome, Supervised::Abandoned) && abandoned);

        let stop = Stop::default();
        stop.on_signal(Signal::Interrupt, Duration::from_secs(5));
        stop.on_signal(Signal::Interrupt, Duration::from_secs(5));
        let (_keep, never) = tokio::sync::oneshot::channel::<()>();
        assert!(matches!(
            stop.supervise(never, Duration::from_secs(5), false, || ()).await,
            Supervised::Forced(Signal::Interrupt)
        ));
    }
}
