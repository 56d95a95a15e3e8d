//! Delayed work, per resource: the next run of each of its timers, the retry of a failed handler,
//! and the work that waits behind that retry (a resource's work runs in order, so nothing of it
//! may overtake a retry). One queue of deadlines for all of it, and one owner, so that what is
//! scheduled, cancelled, fired and released at a stop is decided in one place.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::hash::Hash;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_util::time::delay_queue::{self, DelayQueue};

/// What came due.
#[derive(Debug, PartialEq)]
pub(crate) enum Fired<R> {
    /// Timer `index` of the resource's kind: it is not scheduled again until the caller says so.
    Timer(u16),
    /// The retry: the work held behind it stays held until [`Scheduler::release`], so that a
    /// retry that fails again keeps it in order.
    Retry(R),
}

#[derive(Clone, Copy)]
enum Due {
    Timer(u16),
    Retry,
}

/// One resource's delayed work. Kept only while it holds something.
struct Delays<R, W> {
    timers: Vec<(u16, delay_queue::Key)>,
    retry: Option<(R, delay_queue::Key)>,
    /// Held behind a retry, or behind a retry that just fired and has not been released.
    held: VecDeque<W>,
}

impl<R, W> Default for Delays<R, W> {
    fn default() -> Self {
        Delays {
            timers: Vec::new(),
            retry: None,
            held: VecDeque::new(),
        }
    }
}

impl<R, W> Delays<R, W> {
    fn is_empty(&self) -> bool {
        self.timers.is_empty() && self.retry.is_none() && self.held.is_empty()
    }
}

/// What a stop or the end of the source releases.
pub(crate) struct Released<K, W> {
    /// Retries that were scheduled and will not run.
    pub(crate) retries_dropped: usize,
    /// The work that waited behind them, per resource, in order.
    pub(crate) held: Vec<(K, VecDeque<W>)>,
}

/// The delayed work of a set of resources, keyed by `K`; `R` is a retry, `W` a unit of work.
pub(crate) struct Scheduler<K, R, W> {
    queue: DelayQueue<(K, Due)>,
    resources: hashbrown::HashMap<K, Delays<R, W>, ahash::RandomState>,
    retries: usize,
    held: usize,
    accepting: bool,
}

impl<K, R, W> Default for Scheduler<K, R, W> {
    fn default() -> Self {
        Scheduler {
            queue: DelayQueue::new(),
            resources: hashbrown::HashMap::default(),
            retries: 0,
            held: 0,
            accepting: true,
        }
    }
}

impl<K: Clone + Eq + Hash, R, W> Scheduler<K, R, W> {
    /// Runs timer `timer` of `key` after `after`, unless the scheduler is stopped. A timer already
    /// scheduled for it is replaced.
    pub(crate) fn schedule_timer(&mut self, key: &K, timer: u16, after: Duration) {
        if !self.accepting {
            return;
        }
        let delays = self.resources.entry(key.clone()).or_default();
        if let Some(position) = delays.timers.iter().position(|(index, _)| *index == timer) {
            let (_, old) = delays.timers.swap_remove(position);
            self.queue.try_remove(&old);
        }
        let scheduled = self.queue.insert((key.clone(), Due::Timer(timer)), after);
        delays.timers.push((timer, scheduled));
    }

    /// Runs `retry` for `key` after `after` and holds the resource's later work until it has run;
    /// gives the retry back if the scheduler is stopped.
    pub(crate) fn schedule_retry(&mut self, key: &K, retry: R, after: Duration) -> Result<(), R> {
        if !self.accepting {
            return Err(retry);
        }
        let delays = self.resources.entry(key.clone()).or_default();
        let scheduled = self.queue.insert((key.clone(), Due::Retry), after);
        match delays.retry.replace((retry, scheduled)) {
            Some((_, old)) => {
                self.queue.try_remove(&old);
            }
            _ => {
                self.retries += 1;
            }
        }
        Ok(())
    }

    /// Whether `key`'s new work must wait: a retry is scheduled, or fired and not yet released.
    pub(crate) fn holds(&self, key: &K) -> bool {
        // Asked for every event: most of the time nothing is held anywhere.
        if self.retries == 0 && self.held == 0 {
            return false;
        }
        self.resources
            .get(key)
            .is_some_and(|delays| delays.retry.is_some() || !delays.held.is_empty())
    }

    /// The retry scheduled for `key`, if any.
    pub(crate) fn retry(&self, key: &K) -> Option<&R> {
        self.resources
            .get(key)
            .and_then(|delays| delays.retry.as_ref())
            .map(|(retry, _)| retry)
    }

    /// Keeps `work` for `key` until the retry is released, after what is held already.
    pub(crate) fn hold(&mut self, key: &K, work: W) {
        self.resources.entry(key.clone()).or_default().held.push_back(work);
        self.held += 1;
    }

    /// The work held for `key`, in order; the resource no longer waits.
    pub(crate) fn release(&mut self, key: &K) -> VecDeque<W> {
        if self.held == 0 {
            return VecDeque::new();
        }
        let Some(delays) = self.resources.get_mut(key) else {
            return VecDeque::new();
        };
        let held = std::mem::take(&mut delays.held);
        self.held -= held.len();
        if delays.is_empty() {
            self.resources.remove(key);
        }
        held
    }

    /// Cancels `key`'s scheduled retry; its timers stay. Returns the retry and the work held
    /// behind it (which the caller drops or runs).
    pub(crate) fn cancel_retry(&mut self, key: &K) -> Option<(R, VecDeque<W>)> {
        let delays = self.resources.get_mut(key)?;
        let (retry, scheduled) = delays.retry.take()?;
        self.queue.try_remove(&scheduled);
        self.retries -= 1;
        let held = std::mem::take(&mut delays.held);
        self.held -= held.len();
        if delays.is_empty() {
            self.resources.remove(key);
        }
        Some((retry, held))
    }

    /// Forgets `key` (the resource is gone): cancels its timers and its retry. Returns the retry,
    /// if one was scheduled, and the work held for it.
    pub(crate) fn forget(&mut self, key: &K) -> (Option<R>, VecDeque<W>) {
        let Some(delays) = self.resources.remove(key) else {
            return (None, VecDeque::new());
        };
        for (_, scheduled) in &delays.timers {
            self.queue.try_remove(scheduled);
        }
        let retry = delays.retry.map(|(retry, scheduled)| {
            self.queue.try_remove(&scheduled);
            self.retries -= 1;
            retry
        });
        self.held -= delays.held.len();
        (retry, delays.held)
    }

    /// Stops: nothing is scheduled any more, timers end, scheduled retries are dropped, and the
    /// work held behind them is handed back, per resource, in order.
    pub(crate) fn stop(&mut self) -> Released<K, W> {
        self.accepting = false;
        self.queue.clear();
        let mut released = Released {
            retries_dropped: self.retries,
            held: Vec::new(),
        };
        for (key, delays) in self.resources.drain() {
            if !delays.held.is_empty() {
                released.held.push((key, delays.held));
            }
        }
        self.retries = 0;
        self.held = 0;
        released
    }

    /// Whether it accepts delayed work (it does until [`Scheduler::stop`]).
    #[cfg(test)]
    pub(crate) fn is_accepting(&self) -> bool {
        self.accepting
    }

    /// Whether nothing is scheduled: nothing can come due until something is.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Retries scheduled and not yet due.
    pub(crate) fn retries_scheduled(&self) -> usize {
        self.retries
    }

    /// Units of work held behind retries.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// The next delayed work that came due, in deadline order; `Poll::Pending` while none has,
    /// also when nothing is scheduled.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<(K, Fired<R>)> {
        loop {
            let expired = match self.queue.poll_expired(cx) {
                Poll::Ready(Some(expired)) => expired,
                // Empty: a later insert wakes the task that polled.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            };
            let (key, due) = expired.into_inner();
            let Some(delays) = self.resources.get_mut(&key) else {
                continue;
            };
            let fired = match due {
                Due::Timer(timer) => {
                    delays.timers.retain(|(index, _)| *index != timer);
                    Fired::Timer(timer)
                }
                Due::Retry => match delays.retry.take() {
                    Some((retry, _)) => {
                        self.retries -= 1;
                        Fired::Retry(retry)
                    }
                    None => continue,
                },
            };
            if delays.is_empty() {
                self.resources.remove(&key);
            }
            return Poll::Ready((key, fired));
        }
    }

    /// Waits for the next delayed work to come due (forever, if none ever does).
    pub(crate) async fn fired(&mut self) -> (K, Fired<R>) {
        poll_fn(|cx| self.poll_fired(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Instant, advance};

    type Test = Scheduler<&'static str, &'static str, u32>;

    /// What comes due within `within`, in order, with the time it came.
    async fn fired_within(scheduler: &mut Test, within: Duration) -> Vec<(&'static str, Fired<&'static str>, u64)> {
        let start = Instant::now();
        let mut fired = Vec::new();
        loop {
            tokio::select! {
                biased;
                (key, what) = scheduler.fired() => fired.push((key, what, start.elapsed().as_millis() as u64)),
                () = tokio::time::sleep_until(start + within) => return fired,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timers_and_retries_fire_in_deadline_order() {
        let mut scheduler = Test::default();
        scheduler.schedule_timer(&"a", 0, Duration::from_millis(300));
        scheduler
            .schedule_retry(&"b", "retry b", Duration::from_millis(100))
            .unwrap();
        scheduler.schedule_timer(&"a", 1, Duration::from_millis(200));
        assert_eq!(scheduler.retries_scheduled(), 1);
        let fired = fired_within(&mut scheduler, Duration::from_secs(1)).await;
        assert_eq!(
            fired,
            vec![
                ("b", Fired::Retry("retry b"), 100),
                ("a", Fired::Timer(1), 200),
                ("a", Fired::Timer(0), 300),
            ]
        );
        assert_eq!(scheduler.retries_scheduled(), 0);
        assert!(scheduler.resources.is_empty(), "nothing kept once all fired");
    }

    #[tokio::test(start_paused = true)]
    async fn rescheduling_a_timer_replaces_it() {
        let mut scheduler = Test::default();
        scheduler.schedule_timer(&"a", 0, Duration::from_millis(100));
        scheduler.schedule_timer(&"a", 0, Duration::from_millis(500));
        let fired = fired_within(&mut scheduler, Duration::from_secs(1)).await;
        assert_eq!(fired, vec![("a", Fired::Timer(0), 500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn work_waits_behind_a_retry_until_released() {
        let mut scheduler = Test::default();
        assert!(!scheduler.holds(&"a"));
        scheduler
            .schedule_retry(&"a", "retry", Duration::from_millis(100))
            .unwrap();
        assert!(scheduler.holds(&"a"));
        scheduler.hold(&"a", 1);
        scheduler.hold(&"a", 2);
        assert_eq!(scheduler.held(), 2);
        let fired = fired_within(&mut scheduler, Duration::from_millis(150)).await;
        assert_eq!(fired, vec![("a", Fired::Retry("retry"), 100)]);
        // Fired, not released: still held (the retry may fail again).
        assert!(scheduler.holds(&"a"));
        scheduler
            .schedule_retry(&"a", "again", Duration::from_millis(100))
            .unwrap();
        scheduler.hold(&"a", 3);
        let fired = fired_within(&mut scheduler, Duration::from_millis(150)).await;
        assert_eq!(fired, vec![("a", Fired::Retry("again"), 100)]);
        assert_eq!(scheduler.release(&"a"), VecDeque::from([1, 2, 3]));
        assert!(!scheduler.holds(&"a"));
        assert_eq!(scheduler.held(), 0);
        assert!(scheduler.resources.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_a_retry_hands_back_what_it_held_and_keeps_the_timers() {
        let mut scheduler = Test::default();
        scheduler.schedule_timer(&"a", 0, Duration::from_millis(300));
        scheduler
            .schedule_retry(&"a", "retry", Duration::from_millis(100))
            .unwrap();
        scheduler.hold(&"a", 7);
        assert_eq!(scheduler.retry(&"a"), Some(&"retry"));
        assert_eq!(scheduler.cancel_retry(&"a"), Some(("retry", VecDeque::from([7]))));
        assert_eq!(scheduler.cancel_retry(&"a"), None);
        assert_eq!(scheduler.retries_scheduled(), 0);
        let fired = fired_within(&mut scheduler, Duration::from_secs(1)).await;
        assert_eq!(fired, vec![("a", Fired::Timer(0), 300)]);
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_a_resource_cancels_everything_it_had() {
        let mut scheduler = Test::default();
        scheduler.schedule_timer(&"a", 0, Duration::from_millis(100));
        scheduler
            .schedule_retry(&"a", "retry", Duration::from_millis(100))
            .unwrap();
        scheduler.hold(&"a", 1);
        scheduler.schedule_timer(&"b", 0, Duration::from_millis(200));
        assert_eq!(scheduler.forget(&"a"), (Some("retry"), VecDeque::from([1])));
        assert_eq!(scheduler.forget(&"a"), (None, VecDeque::new()));
        assert_eq!((scheduler.retries_scheduled(), scheduler.held()), (0, 0));
        let fired = fired_within(&mut scheduler, Duration::from_secs(1)).await;
        assert_eq!(fired, vec![("b", Fired::Timer(0), 200)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_drops_retries_ends_timers_and_releases_held_work() {
        let mut scheduler = Test::default();
        scheduler.schedule_timer(&"a", 0, Duration::from_millis(100));
        scheduler
            .schedule_retry(&"b", "retry", Duration::from_millis(100))
            .unwrap();
        scheduler.hold(&"b", 1);
        scheduler.hold(&"b", 2);
        scheduler
            .schedule_retry(&"c", "retry c", Duration::from_millis(100))
            .unwrap();
        let released = scheduler.stop();
        assert_eq!(released.retries_dropped, 2);
        assert_eq!(released.held, vec![("b", VecDeque::from([1, 2]))]);
        assert!(!scheduler.is_accepting());
        // Nothing is accepted any more, and nothing fires.
        assert_eq!(scheduler.schedule_retry(&"a", "late", Duration::ZERO), Err("late"));
        scheduler.schedule_timer(&"a", 0, Duration::ZERO);
        advance(Duration::from_secs(1)).await;
        assert!(fired_within(&mut scheduler, Duration::from_secs(1)).await.is_empty());
        assert_eq!((scheduler.retries_scheduled(), scheduler.held()), (0, 0));
    }
}
