//! Retrying failed create, update and delete handlers: whether a failure is retried, after how
//! long (exponential backoff with jitter, or the delay of `Error::temporary`), and the kopf-style
//! log lines of the progress. The retry itself waits in the dispatcher's one queue of delayed work,
//! beside the timers.

use crate::api::error::RetryHint;
use crate::api::event::Event;
use crate::api::resource::Resource;
use crate::contract::outcome::HandlerError;
use crate::contract::registry::{MAX_BACKOFF, Registration, RetryPolicy};
use crate::exec::progress::Cause;
use std::cell::Cell;
use std::time::Duration;

/// A handler of an event that failed and runs again after `delay`, with the handlers after it.
pub(crate) struct PendingRetry {
    pub(crate) event: Event,
    /// The failed handler's index among the plan's handlers of the event's type.
    pub(crate) handler: usize,
    /// Retries done so far, this one included.
    pub(crate) attempt: u32,
    pub(crate) delay: Duration,
    /// Why the event's handlers run: the retry goes on with the same ones.
    pub(crate) cause: Cause,
    /// Whether the event's `resume` handlers run too.
    pub(crate) resuming: bool,
    /// For an update from a recorded essence, that essence (the base of its `diff`).
    pub(crate) base: Option<Box<serde_json::Value>>,
}

/// What becomes of a failed handler.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Run it again after this delay.
    Retry(Duration),
    /// Its `retries` are spent.
    GiveUp,
    /// `Error::permanent`.
    Permanent,
}

/// Whether failures of `handler` are retried: create, update and delete handlers are; event
/// handlers (fire-and-forget, as kopf's `on.event`), timers, startup and cleanup are not.
pub(crate) fn retried(handler: &Registration) -> bool {
    handler.trigger.is_retried()
}

/// What to do after a failure, `retries_done` retries into the handler's policy.
pub(crate) fn verdict(policy: &RetryPolicy, err: &HandlerError, retries_done: u32) -> Verdict {
    if err.retry == RetryHint::Never {
        return Verdict::Permanent;
    }
    if policy.retries.is_some_and(|retries| retries_done >= retries) {
        return Verdict::GiveUp;
    }
    match err.retry {
        RetryHint::After(delay) => Verdict::Retry(delay),
        _ => Verdict::Retry(backoff(policy.backoff, retries_done, random_unit())),
    }
}

/// The delay before retry number `retries_done + 1`: `first` doubled for each retry done, at most
/// [`MAX_BACKOFF`] (or `first`, if larger), plus `jitter` (in `[0, 1)`) times a quarter of that.
pub(crate) fn backoff(first: Duration, retries_done: u32, jitter: f64) -> Duration {
    let cap = MAX_BACKOFF.max(first);
    let base = first
        .checked_mul(1u32 << retries_done.min(31))
        .map_or(cap, |delay| delay.min(cap));
    base + base.mul_f64(jitter.clamp(0.0, 1.0) / 4.0)
}

/// A number in `[0, 1)` from a per-thread xorshift generator: jitter needs spread, not secrecy.
fn random_unit() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1
        });
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// A `tracing` event at `$level` about `$handler` on `$resource`, carrying both as fields.
macro_rules! about {
    ($level:ident, $handler:expr_2021, $resource:expr_2021, $($message:tt)+) => {
        tracing::$level!(
            target: "memo",
            handler = $handler.id,
            kind = $resource.kind,
            namespace = $resource.namespace().unwrap_or_default(),
            name = $resource.name(),
            $($message)+
        )
    };
}

/// Logs a failure that will be retried.
pub(crate) fn log_temporary(handler: &Registration, resource: &Resource<'_>, err: &HandlerError, delay: Duration) {
    about!(
        warn,
        handler,
        resource,
        "handler `{}` failed temporarily: {err}; retrying in {delay:.1?}",
        handler.id,
    );
}

/// Logs a success after `retries` retries.
pub(crate) fn log_recovered(handler: &Registration, resource: &Resource<'_>, retries: u32) {
    about!(
        info,
        handler,
        resource,
        "handler `{}` succeeded after {retries} retr{}",
        handler.id,
        if retries == 1 { "y" } else { "ies" },
    );
}

/// Logs the end of a handler's tries for this event.
pub(crate) fn log_final(
    handler: &Registration,
    resource: &Resource<'_>,
    err: &HandlerError,
    verdict: &Verdict,
    retries: u32,
) {
    let outcome = match verdict {
        Verdict::Permanent => "failed permanently".to_owned(),
        _ => format!("gave up after {retries} retr{}", if retries == 1 { "y" } else { "ies" }),
    };
    about!(error, handler, resource, "handler `{}` {outcome}: {err}", handler.id,);
}

/// Logs a retry that a `DELETED` event made moot.
pub(crate) fn log_cancelled(handler: &Registration, resource: &Resource<'_>, events_dropped: usize) {
    about!(
        info,
        handler,
        resource,
        "the resource was deleted: the retry of handler `{}` is cancelled{}",
        handler.id,
        match events_dropped {
            0 => String::new(),
            n => format!(", and {n} event(s) waiting behind it dropped"),
        },
    );
}

/// Logs the retries a stop or the end of the source dropped.
pub(crate) fn log_dropped(count: usize, why: &str) {
    if count > 0 {
        tracing::info!(target: "memo", "{why}: {count} scheduled retr{} dropped", if count == 1 { "y" } else { "ies" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_delay_up_to_the_cap() {
        let second = Duration::from_secs(1);
        assert_eq!(backoff(second, 0, 0.0), second);
        assert_eq!(backoff(second, 1, 0.0), 2 * second);
        assert_eq!(backoff(second, 5, 0.0), 32 * second);
        assert_eq!(backoff(second, 9, 0.0), MAX_BACKOFF);
        assert_eq!(backoff(second, 1000, 0.0), MAX_BACKOFF);
        // Jitter adds up to a quarter.
        assert_eq!(backoff(second * 4, 0, 0.5), Duration::from_millis(4500));
        assert!(backoff(second, 9, 0.999) < MAX_BACKOFF + MAX_BACKOFF / 4);
        // A first delay above the cap is kept.
        assert_eq!(backoff(Duration::from_secs(600), 3, 0.0), Duration::from_secs(600));
    }

    #[test]
    fn verdicts() {
        let policy = RetryPolicy {
            retries: Some(2),
            backoff: Duration::from_secs(2),
            timeout: None,
        };
        let any = HandlerError::new("boom");
        assert!(
            matches!(verdict(&policy, &any, 0), Verdict::Retry(d) if d >= Duration::from_secs(2) && d <= Duration::from_millis(2500))
        );
        assert!(
            matches!(verdict(&policy, &any, 1), Verdict::Retry(d) if d >= Duration::from_secs(4) && d <= Duration::from_secs(5))
        );
        assert_eq!(verdict(&policy, &any, 2), Verdict::GiveUp);
        let temporary = HandlerError {
            message: "later".into(),
            retry: RetryHint::After(Duration::from_secs(10)),
        };
        assert_eq!(verdict(&policy, &temporary, 0), Verdict::Retry(Duration::from_secs(10)));
        assert_eq!(verdict(&policy, &temporary, 2), Verdict::GiveUp);
        let permanent = HandlerError {
            message: "never".into(),
            retry: RetryHint::Never,
        };
        assert_eq!(verdict(&policy, &permanent, 0), Verdict::Permanent);
        assert!(matches!(
            verdict(&RetryPolicy::DEFAULT, &any, 1_000_000),
            Verdict::Retry(_)
        ));
    }

    #[test]
    fn jitter_is_spread_in_the_unit_interval() {
        let samples: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(samples.iter().any(|&x| x < 0.25) && samples.iter().any(|&x| x > 0.75));
    }
}
