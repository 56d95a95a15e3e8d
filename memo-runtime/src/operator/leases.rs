//! `--shard auto`: the replicas of one operator (same name, same store) split the hash space's
//! [`BUCKETS`] between them through leases in their shared store: each heartbeats a membership
//! record, works out from the live members which buckets are its share (the same answer in every
//! replica), and owns a bucket only while it holds that bucket's lease (the store's fenced lock).
//!
//! Never two owners: a bucket is released only after this replica stopped admitting its events
//! (and gave running handlers a moment), and one whose lease was not renewed in time stops being
//! handled before the lease can expire (fail-stop, as controller-runtime's renew deadline).

use crate::api::shard::{BUCKETS, Owned, bucket_range};
use crate::contract::cluster::Cluster;
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use crate::store::leaser::Leaser;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How long a replica gives handlers of a bucket it gives away before it releases the lease.
const DRAIN: Duration = Duration::from_millis(500);

/// A running lease keeper; [`Keeper::stop`] hands the buckets over.
pub(crate) struct Keeper {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Starts keeping this replica's share of the buckets of `bot` through `leaser`, in `owned`.
    pub(crate) fn start(
        leaser: Arc<dyn Leaser>,
        bot: &str,
        owned: Arc<Owned>,
        metrics: Option<Metrics>,
        health: Health,
        source: Option<Arc<dyn Cluster>>,
    ) -> Keeper {
        let stop = CancellationToken::new();
        let lease = leaser.lease();
        if let Some(source) = &source {
            source.shares(Arc::clone(&owned));
        }
        let keeper = Leases {
            me: crate::store::new_token(),
            leaser,
            owned,
            metrics,
            health,
            lease,
            renew: lease / 3,
            members_logged: std::sync::atomic::AtomicUsize::new(0),
            source,
        };
        tracing::info!(
            target: "memo",
            "shard auto: joining the replicas of `{bot}` in {} as {} (leases of {lease:?}, renewed every {:?})",
            keeper.leaser.describe(),
            keeper.me,
            keeper.renew
        );
        let task = tokio::spawn(keeper.run(stop.clone()));
        Keeper { stop, task }
    }

    /// Stops handling every bucket, releases their leases and leaves the group: the others take
    /// them over at once.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

struct Leases {
    me: String,
    leaser: Arc<dyn Leaser>,
    owned: Arc<Owned>,
    metrics: Option<Metrics>,
    health: Health,
    lease: Duration,
    renew: Duration,
    /// The members counted in the last "owning" line.
    members_logged: std::sync::atomic::AtomicUsize,
    /// The cluster watched, told of the buckets gained (its objects are handled at once).
    source: Option<Arc<dyn Cluster>>,
}

impl Leases {
    async fn run(self, stop: CancellationToken) {
        let watchdog = tokio::spawn(report_missed_deadlines(Arc::clone(&self.owned)));
        let mut members_seen = 0;
        loop {
            let started = Instant::now();
            match self.round().await {
                Ok(members) => {
                    self.health.membership_lost(false);
                    members_seen = members;
                }
                Err(err) => {
                    self.health.membership_lost(true);
                    tracing::warn!(target: "memo", "shard auto: a round of lease renewals failed: {err}");
                }
            }
            self.publish(members_seen);
            let rest = self.renew.saturating_sub(started.elapsed());
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(rest) => {}
            }
        }
        watchdog.abort();
        self.leave().await;
    }

    /// One round: heartbeat, live members, this replica's share; releases what is no longer its
    /// share, renews what it holds, acquires what is free. Returns the number of live members.
    async fn round(&self) -> crate::api::error::Result<usize> {
        let now_ms = unix_millis();
        let until = now_ms + self.lease.as_millis() as u64;
        self.bounded(self.leaser.heartbeat(&self.me, until)).await??;
        let members = self.bounded(self.leaser.members(now_ms)).await??;
        let share = share(&members, &self.me);
        let held: Vec<usize> = self.held();
        // Given away first: the new owner can only take it once released.
        let giving: Vec<usize> = held.iter().copied().filter(|&bucket| !share[bucket]).collect();
        if !giving.is_empty() {
            for &bucket in &giving {
                self.owned.set(bucket, false);
            }
            tokio::time::sleep(DRAIN.min(self.renew)).await;
            for &bucket in &giving {
                let _ = self.bounded(self.leaser.release(bucket, &self.me)).await;
            }
            tracing::info!(target: "memo", "shard auto: released {} to the other replicas", ranges(&giving));
            if let Some(source) = &self.source {
                source.lost(&giving);
            }
        }
        let mut lost = Vec::new();
        let mut resumed = Vec::new();
        for bucket in held.into_iter().filter(|&bucket| share[bucket]) {
            let renewed_at = Instant::now();
            match self.bounded(self.leaser.renew(bucket, &self.me)).await {
                // Handled again, if a silence had let the deadline pass.
                Ok(Ok(true)) => {
                    if !self.owned.owns_bucket(bucket) {
                        resumed.push(bucket);
                    }
                    self.owned.hold_until(bucket, renewed_at + self.deadline());
                }
                // Not renewed: the lease ran out, or the store cannot say; the deadline stands.
                Ok(Ok(false)) => {
                    self.owned.set(bucket, false);
                    lost.push(bucket);
                }
                _ => {}
            }
        }
        if !lost.is_empty() {
            if let Some(metrics) = &self.metrics {
                metrics.shard_losses.inc_by(lost.len() as u64);
            }
            tracing::warn!(target: "memo", "shard auto: lost the leases of {}", ranges(&lost));
            if let Some(source) = &self.source {
                source.lost(&lost);
            }
        }
        if !resumed.is_empty()
            && let Some(source) = &self.source
        {
            // Its events while past the deadline were not handled, nor kept: read them again.
            source.gained(&resumed);
        }
        let mut gained = Vec::new();
        for bucket in (0..BUCKETS).filter(|&bucket| share[bucket] && !self.owned.marked(bucket)) {
            let acquired_at = Instant::now();
            if let Ok(Ok(Some(token))) = self.bounded(self.leaser.acquire(bucket, &self.me)).await {
                self.owned.set_token(bucket, token);
                self.owned.hold_until(bucket, acquired_at + self.deadline());
                self.owned.set(bucket, true);
                gained.push(bucket);
            }
        }
        if !gained.is_empty() {
            if let Some(metrics) = &self.metrics {
                metrics.shard_acquisitions.inc_by(gained.len() as u64);
            }
            tracing::info!(target: "memo", "shard auto: acquired {}", ranges(&gained));
            if let Some(source) = &self.source {
                source.gained(&gained);
            }
        }
        let members_changed = self
            .members_logged
            .swap(members.len(), std::sync::atomic::Ordering::Relaxed)
            != members.len();
        if !gained.is_empty() || !giving.is_empty() || !lost.is_empty() || members_changed {
            tracing::info!(
                target: "memo",
                "shard auto: owning {} of {BUCKETS} buckets, {} member(s)",
                self.owned.count(),
                members.len()
            );
        }
        Ok(members.len())
    }

    /// Stops handling everything, releases every lease and leaves the group.
    async fn leave(&self) {
        let held = self.held();
        for &bucket in &held {
            self.owned.set(bucket, false);
        }
        for &bucket in &held {
            let _ = self.bounded(self.leaser.release(bucket, &self.me)).await;
        }
        let _ = self.bounded(self.leaser.leave(&self.me)).await;
        self.publish(0);
        tracing::info!(target: "memo", "shard auto: left the group, handing over {}", ranges(&held));
    }

    /// How long after a renewal the replica may still handle a bucket: two thirds of the lease,
    /// so that it has stopped before the lease can expire and another acquire it.
    fn deadline(&self) -> Duration {
        self.lease * 2 / 3
    }

    async fn bounded<T>(&self, future: impl std::future::Future<Output = T>) -> crate::api::error::Result<T> {
        tokio::time::timeout(self.renew, future)
            .await
            .map_err(|_| crate::api::error::Error::Store(format!("no answer within {:?}", self.renew)))
    }

    /// The buckets whose leases this replica holds (whether their deadline passed or not).
    fn held(&self) -> Vec<usize> {
        (0..BUCKETS).filter(|&bucket| self.owned.marked(bucket)).collect()
    }

    fn publish(&self, members: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.shard_buckets_owned.set(self.owned.count() as i64);
            metrics.shard_members.set(members as i64);
        }
    }
}

/// Says when buckets stop being handled because their leases were not renewed in time (a
/// store that hangs included), and when they are handled again. `Owned` itself enforces the
/// deadlines, on every event: this only tells.
async fn report_missed_deadlines(owned: Arc<Owned>) {
    let mut missed = vec![false; BUCKETS];
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (mut stopped, mut resumed) = (Vec::new(), Vec::new());
        for (bucket, missed) in missed.iter_mut().enumerate() {
            let now = owned.marked(bucket) && !owned.owns_bucket(bucket);
            match (*missed, now) {
                (false, true) => stopped.push(bucket),
                (true, false) if owned.owns_bucket(bucket) => resumed.push(bucket),
                _ => {}
            }
            *missed = now;
        }
        if !stopped.is_empty() {
            tracing::warn!(target: "memo", "shard auto: the leases of {} were not renewed in time: no longer handled", ranges(&stopped));
        }
        if !resumed.is_empty() {
            tracing::info!(target: "memo", "shard auto: the leases of {} are renewed: handled again", ranges(&resumed));
        }
    }
}

/// This replica's share, the same in every replica that sees the same members: each bucket
/// ranks the members by rendezvous hashing, and buckets go to members by deferred acceptance
/// (buckets propose in rank order, a member keeps the best-ranked proposals up to its even
/// share, the counts differing by one at most). The result does not depend on any order, and
/// when a member comes or goes, few buckets other than its own move.
fn share(members: &[String], me: &str) -> Vec<bool> {
    let mut mine = vec![false; BUCKETS];
    let count = members.len();
    if count == 0 {
        return mine;
    }
    let room: Vec<usize> = (0..count)
        .map(|index| BUCKETS / count + usize::from(index < BUCKETS % count))
        .collect();
    let score = |member: usize, bucket: usize| crate::api::shard::stable_hash(&format!("{}/{bucket}", members[member]));
    let ranks: Vec<Vec<usize>> = (0..BUCKETS)
        .map(|bucket| {
            let mut ranked: Vec<usize> = (0..count).collect();
            ranked.sort_unstable_by_key(|&member| std::cmp::Reverse(score(member, bucket)));
            ranked
        })
        .collect();
    let mut next = vec![0usize; BUCKETS];
    let mut held: Vec<Vec<(u64, usize)>> = vec![Vec::new(); count];
    let mut free: Vec<usize> = (0..BUCKETS).rev().collect();
    while let Some(bucket) = free.pop() {
        // Total room is `BUCKETS`: a bucket finds a place before running out of members.
        let Some(&member) = ranks[bucket].get(next[bucket]) else {
            continue;
        };
        next[bucket] += 1;
        held[member].push((score(member, bucket), bucket));
        if held[member].len() > room[member]
            && let Some(weakest) = (0..held[member].len()).min_by_key(|&index| held[member][index])
        {
            let (_, dropped) = held[member].swap_remove(weakest);
            free.push(dropped);
        }
    }
    if let Some(index) = members.iter().position(|member| member == me) {
        for &(_, bucket) in &held[index] {
            mine[bucket] = true;
        }
    }
    mine
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Buckets as hash ranges, for the logs: `[0x00.., 0x03..) (buckets 0-2)`.
fn ranges(buckets: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &bucket in buckets {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == bucket => *end = bucket,
            _ => runs.push((bucket, bucket)),
        }
    }
    let shown: Vec<String> = runs
        .iter()
        .map(|&(start, end)| {
            format!(
                "[{:#018x}, {:#018x}] (bucket{} {start}{})",
                bucket_range(start).start(),
                bucket_range(end).end(),
                if start == end { "" } else { "s" },
                if start == end { String::new() } else { format!("-{end}") }
            )
        })
        .collect();
    format!("{} bucket(s): {}", buckets.len(), shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn shares_are_even_disjoint_and_complete() {
        for count in 1..=5 {
            let names: Vec<String> = (0..count).map(|index| format!("replica-{index}")).collect();
            let shares: Vec<Vec<bool>> = names.iter().map(|me| share(&names, me)).collect();
            for bucket in 0..BUCKETS {
                assert_eq!(
                    shares.iter().filter(|share| share[bucket]).count(),
                    1,
                    "bucket {bucket}"
                );
            }
            let sizes: Vec<usize> = shares
                .iter()
                .map(|share| share.iter().filter(|&&b| b).count())
                .collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn a_member_leaving_moves_few_buckets() {
        let three = members(&["a", "b", "c"]);
        let two = members(&["a", "b"]);
        let moved = (0..BUCKETS)
            .filter(|&bucket| share(&three, "a")[bucket] && !share(&two, "a")[bucket])
            .count();
        assert!(moved < BUCKETS / 16, "a keeps nearly all it had: {moved} moved");
        let taken = (0..BUCKETS)
            .filter(|&bucket| !share(&three, "a")[bucket] && share(&two, "a")[bucket])
            .count();
        assert!(taken < BUCKETS / 2, "a takes about half of c's: {taken}");
    }

    #[tokio::test(start_paused = true)]
    async fn two_keepers_on_one_store_split_every_bucket_and_one_leaving_hands_over() {
        let store: Arc<dyn crate::store::Store> = Arc::new(crate::store::InProcessStore::new());
        let leaser =
            || -> Arc<dyn Leaser> { Arc::new(crate::store::leaser::StoreLeaser::new(Arc::clone(&store), "bot")) };
        let (first, second) = (Arc::new(Owned::default()), Arc::new(Owned::default()));
        let a = Keeper::start(leaser(), "bot", Arc::clone(&first), None, Health::default(), None);
        let b = Keeper::start(leaser(), "bot", Arc::clone(&second), None, Health::default(), None);
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if first.count() + second.count() == BUCKETS && first.count().abs_diff(second.count()) <= 1 {
                break;
            }
        }
        assert_eq!((first.count(), second.count()), (BUCKETS / 2, BUCKETS / 2));
        assert!((0..BUCKETS).all(|bucket| first.owns_bucket(bucket) != second.owns_bucket(bucket)));
        a.stop().await;
        assert_eq!(first.count(), 0);
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if second.count() == BUCKETS {
                break;
            }
        }
        assert_eq!(second.count(), BUCKETS);
        b.stop().await;
    }
}

/// Two keepers on a lease table of the test's own, one of which stops hearing from it.
#[cfg(test)]
mod partition {
    use super::*;
    use crate::api::shard::Fence;
    use crate::store::StoreFuture;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    const LEASE: Duration = Duration::from_millis(900);

    /// Waits until `done`, at most 30 s.
    fn settle(what: &str, done: &dyn Fn() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(30), "waited for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Leases and members with deadlines, in memory.
    #[derive(Default)]
    struct Table {
        buckets: Mutex<HashMap<usize, (String, Instant)>>,
        members: Mutex<HashMap<String, u64>>,
        /// The last fencing token given, per bucket.
        tokens: Mutex<HashMap<usize, u64>>,
    }

    /// One replica's view of the table; `cut` makes every call hang, as a store that stopped
    /// answering this replica only.
    struct View {
        table: Arc<Table>,
        cut: Arc<AtomicBool>,
    }

    impl View {
        /// Answers at once, or, while cut, as soon as the cut ends (a call that times out first
        /// is dropped, as a store call the keeper gives up on).
        fn call<'a, T: Send + 'a>(&'a self, answer: impl FnOnce(&Table) -> T + Send + 'a) -> StoreFuture<'a, T> {
            Box::pin(async move {
                while self.cut.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(answer(&self.table))
            })
        }
    }

    impl Leaser for View {
        fn describe(&self) -> String {
            "a test table".to_owned()
        }

        fn lease(&self) -> Duration {
            LEASE
        }

        fn heartbeat<'a>(&'a self, me: &'a str, until: u64) -> StoreFuture<'a, ()> {
            self.call(move |table| {
                table.members.lock().unwrap().insert(me.to_owned(), until);
            })
        }

        fn members(&self, now: u64) -> StoreFuture<'_, Vec<String>> {
            self.call(move |table| {
                let mut members: Vec<String> = table
                    .members
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, until)| **until > now)
                    .map(|(member, _)| member.clone())
                    .collect();
                members.sort();
                members
            })
        }

        fn acquire<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, Option<u64>> {
            self.call(move |table| {
                let mut buckets = table.buckets.lock().unwrap();
                let now = Instant::now();
                match buckets.get(&bucket) {
                    Some((holder, until)) if holder != me && *until > now => None,
                    _ => {
                        buckets.insert(bucket, (me.to_owned(), now + LEASE));
                        let mut tokens = table.tokens.lock().unwrap();
                        let token = tokens.entry(bucket).or_insert(0);
                        *token += 1;
                        Some(*token)
                    }
                }
            })
        }

        fn renew<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, bool> {
            self.call(move |table| {
                let mut buckets = table.buckets.lock().unwrap();
                let now = Instant::now();
                match buckets.get_mut(&bucket) {
                    Some((holder, until)) if holder == me && *until > now => {
                        *until = now + LEASE;
                        true
                    }
                    _ => false,
                }
            })
        }

        fn release<'a>(&'a self, bucket: usize, me: &'a str) -> StoreFuture<'a, ()> {
            self.call(move |table| {
                let mut buckets = table.buckets.lock().unwrap();
                if buckets.get(&bucket).is_some_and(|(holder, _)| holder == me) {
                    buckets.remove(&bucket);
                }
            })
        }

        fn leave<'a>(&'a self, me: &'a str) -> StoreFuture<'a, ()> {
            self.call(move |table| {
                table.members.lock().unwrap().remove(me);
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_cut_off_from_its_leases_stops_before_another_takes_them() {
        let table = Arc::new(Table::default());
        let cut = Arc::new(AtomicBool::new(false));
        let view = |cut: &Arc<AtomicBool>| -> Arc<dyn Leaser> {
            Arc::new(View {
                table: Arc::clone(&table),
                cut: Arc::clone(cut),
            })
        };
        let (a, b) = (Arc::new(Owned::default()), Arc::new(Owned::default()));
        let first = Keeper::start(view(&cut), "bot", Arc::clone(&a), None, Health::default(), None);
        let second = Keeper::start(
            view(&Arc::new(AtomicBool::new(false))),
            "bot",
            Arc::clone(&b),
            None,
            Health::default(),
            None,
        );
        settle("an even split", &|| {
            a.count() == BUCKETS / 2 && b.count() == BUCKETS / 2
        });
        let fences_before: Vec<Option<Fence>> = (0..BUCKETS).map(|bucket| a.fence(bucket)).collect();
        // The first replica no longer hears from the table: it must stop handling its buckets
        // before their leases run out and the second takes them.
        cut.store(true, Ordering::SeqCst);
        let mut overlaps = 0;
        let started = Instant::now();
        while b.count() < BUCKETS {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the second never took every bucket"
            );
            overlaps += (0..BUCKETS)
                .filter(|&bucket| a.owns_bucket(bucket) && b.owns_bucket(bucket))
                .count();
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(overlaps, 0, "a bucket had two owners");
        assert_eq!(a.count(), 0);
        // The new owner's writes carry larger fencing tokens than the old owner's.
        for (bucket, before) in fences_before.iter().enumerate() {
            if let Some(before) = before {
                let after = b.fence(bucket).expect("taken over");
                assert!(
                    after.token() > before.token(),
                    "bucket {bucket}: {before:?} then {after:?}"
                );
            }
        }
        second.stop().await;
        drop(first);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_that_hears_again_before_its_leases_run_out_handles_its_buckets_again() {
        let table = Arc::new(Table::default());
        let cut = Arc::new(AtomicBool::new(false));
        let owned = Arc::new(Owned::default());
        let keeper = Keeper::start(
            Arc::new(View {
                table: Arc::clone(&table),
                cut: Arc::clone(&cut),
            }),
            "bot",
            Arc::clone(&owned),
            None,
            Health::default(),
            None,
        );
        settle("every bucket", &|| owned.count() == BUCKETS);
        // Silent past the deadline (two thirds of the lease): it stops handling; nobody else
        // can take the buckets, their leases are still its own.
        cut.store(true, Ordering::SeqCst);
        settle("handling stopped", &|| owned.count() == 0);
        // Long enough for the watchdog to have looked (it looks every 100 ms), short of the
        // lease (900 ms from the last renewal; the deadline was at 600).
        std::thread::sleep(Duration::from_millis(150));
        // Heard again before the leases ran out: the next renewal succeeds, and it handles them
        // again (not a replica that renews leases it never uses).
        cut.store(false, Ordering::SeqCst);
        settle("handling again", &|| owned.count() == BUCKETS);
        keeper.stop().await;
    }
}
