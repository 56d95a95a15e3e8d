//! Whether an operator is healthy, as its liveness endpoint answers: its event loop runs and its
//! source is connected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// How many parts of a source (the watches of a Kubernetes source) are not connected now.
/// A source made of parts that can lose their connection carries one; others are connected for
/// as long as they yield events.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connection(Arc<AtomicUsize>);

// Only the Kubernetes source has parts that connect.
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
impl Connection {
    /// A connection of `parts` parts, none of them connected yet.
    pub(crate) fn connecting(parts: usize) -> Self {
        Connection(Arc::new(AtomicUsize::new(parts)))
    }

    /// One part connected (it had not been).
    pub(crate) fn part_connected(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// One part lost its connection (it had been connected).
    pub(crate) fn part_disconnected(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn disconnected_parts(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPED: u8 = 2;

/// What the liveness endpoint reports: set by the operator as it goes through its phases.
#[derive(Clone, Default)]
pub(crate) struct Health {
    phase: Arc<AtomicU8>,
    connections: Arc<std::sync::Mutex<Vec<Connection>>>,
    /// With `--shard auto`: whether the replica's membership lease is lost.
    membership_lost: Arc<std::sync::atomic::AtomicBool>,
}

/// The answer to a health check.
pub(crate) struct Verdict {
    pub(crate) healthy: bool,
    pub(crate) reason: String,
}

impl Health {
    /// The event loop has started reading `connections`' source.
    pub(crate) fn running(&self, connections: Vec<Connection>) {
        *self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = connections;
        self.phase.store(RUNNING, Ordering::Release);
    }

    /// The event loop has ended.
    pub(crate) fn stopped(&self) {
        self.phase.store(STOPPED, Ordering::Release);
    }

    /// With `--shard auto`: the replica lost (`true`) or holds its membership lease.
    pub(crate) fn membership_lost(&self, lost: bool) {
        self.membership_lost.store(lost, Ordering::Release);
    }

    /// Whether the source is connected now (`true` for sources that cannot lose a connection).
    pub(crate) fn source_connected(&self) -> bool {
        self.disconnected_parts() == 0
    }

    fn disconnected_parts(&self) -> usize {
        let connections = self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        connections.iter().map(Connection::disconnected_parts).sum()
    }

    pub(crate) fn check(&self) -> Verdict {
        let (healthy, reason) = match self.phase.load(Ordering::Acquire) {
            STARTING => (
                false,
                "starting: the event loop has not started yet (startup handlers, or connecting to the source)"
                    .to_owned(),
            ),
            RUNNING if self.membership_lost.load(Ordering::Acquire) => (
                false,
                "the replica lost its shard membership lease: it handles no bucket until it renews it".to_owned(),
            ),
            RUNNING => match self.disconnected_parts() {
                0 => (true, "ok: the event loop runs and its source is connected".to_owned()),
                parts => (
                    false,
                    format!("the event source is not connected: {parts} watch(es) listing or retrying after a failure"),
                ),
            },
            _ => (false, "stopped: the event loop has ended".to_owned()),
        };
        Verdict { healthy, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_while_running_and_connected() {
        let health = Health::default();
        assert!(!health.check().healthy);
        assert!(health.check().reason.starts_with("starting"));
        let connection = Connection::connecting(2);
        health.running(vec![connection.clone(), Connection::default()]);
        assert!(!health.check().healthy);
        assert!(
            health.check().reason.contains("2 watch(es)"),
            "{}",
            health.check().reason
        );
        connection.part_connected();
        connection.part_connected();
        assert!(health.check().healthy);
        connection.part_disconnected();
        assert!(!health.check().healthy);
        connection.part_connected();
        assert!(health.check().healthy);
        health.membership_lost(true);
        assert!(health.check().reason.contains("membership lease"));
        health.membership_lost(false);
        assert!(health.check().healthy);
        health.stopped();
        assert!(!health.check().healthy);
        assert!(health.check().reason.starts_with("stopped"));
    }
}
