//! What the watches hear of this replica's share of the buckets (`--shard auto`): the buckets it
//! owns, read as each object arrives, and the moves, which make a watch forget what it no longer
//! owns or list again what it gained.

use crate::api::shard::Owned;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// A change of this replica's share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Moved {
    /// Buckets were gained, or handled again after a silence past their deadline: their objects
    /// must be read again (nothing was kept of them, or of their changes meanwhile).
    Gained,
    /// Buckets were lost, or the share is known for the first time: what the watch kept of
    /// others' buckets is forgotten (before the share was known, it kept everything).
    Lost,
}

/// The cluster's side: tells every watch.
#[derive(Default)]
pub(super) struct Shares {
    owned: Arc<OnceLock<Arc<Owned>>>,
    watches: Mutex<Vec<UnboundedSender<Moved>>>,
}

/// A watch's side.
pub(super) struct Share {
    pub(super) owned: Arc<OnceLock<Arc<Owned>>>,
    pub(super) moves: UnboundedReceiver<Moved>,
}

impl Shares {
    /// A new watch's share.
    pub(super) fn watch(&self) -> Share {
        let (sender, moves) = unbounded_channel();
        self.watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(sender);
        Share {
            owned: Arc::clone(&self.owned),
            moves,
        }
    }

    pub(super) fn set(&self, owned: Arc<Owned>) {
        let _ = self.owned.set(owned);
        // Set first: what a watch records from now on is filtered; what it kept until now goes.
        self.moved(Moved::Lost);
    }

    pub(super) fn moved(&self, moved: Moved) {
        self.watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|watch| watch.send(moved).is_ok());
    }
}
