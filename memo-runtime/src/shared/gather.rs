//! `update`s of one key from one process gathered into one write. Each update runs its closure
//! on the value the previous one left (the chain of `KeyState::base`), under the key's local
//! lock; the first of a gathering then lets the others join before the write goes, and the write
//! carries the last value, compared with the value the first started from. Every update of the
//! gathering shares its outcome: all applied, in order, in one atomic step, or none (each then
//! runs its closure again, as after any compare-and-set that lost).
//!
//! `set`s of one key are gathered the same way, into one plain write of the last value: the
//! others are overwritten at the same instant, as if each had been written and replaced.
//!
//! The write is sent and awaited by a task of its own, so that an update abandoned midway (a
//! handler's timeout) neither loses the others' write nor leaves them waiting.

use super::{Backend, KeyState, Space};
use crate::api::error::Error;
use crate::store::local_locks::LocalGuard;
use crate::store::{Version, Versioned, Written};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;

/// What a gathered write did, as every update of it learns.
#[derive(Clone, Debug)]
pub(super) enum Landed {
    Done,
    Changed(Option<Versioned>),
    /// The write failed: nothing written, unless `unknown`.
    Failed {
        unknown: bool,
        message: String,
    },
}

impl Landed {
    fn of(outcome: crate::api::error::Result<Written>) -> Landed {
        match outcome {
            Ok(Written::Done(_)) => Landed::Done,
            Ok(Written::Changed(now)) => Landed::Changed(now),
            // No fence in a gathered write.
            Ok(Written::LeaseLost) => Landed::Failed {
                unknown: false,
                message: "the store reported a lost lease for a write without one".to_owned(),
            },
            Err(err) => Landed::failed(err),
        }
    }

    fn failed(err: Error) -> Landed {
        Landed::Failed {
            unknown: err.is_outcome_unknown(),
            message: match err {
                Error::Store(message) | Error::OutcomeUnknown(message) => message,
                other => other.to_string(),
            },
        }
    }

    /// The error an update of the write returns.
    pub(super) fn error(unknown: bool, message: &str) -> Error {
        if unknown {
            Error::OutcomeUnknown(message.to_owned())
        } else {
            Error::Store(message.to_owned())
        }
    }
}

/// The write being gathered for a key.
pub(super) struct Gathering {
    /// The chain it continues (`KeyState::epoch`): only an update computed on its last value, in
    /// the same chain, may join it.
    epoch: u64,
    /// The version the first update started from.
    expected: Option<Version>,
    /// The last update's value.
    value: Value,
    done: watch::Receiver<Option<Landed>>,
}

/// Whether an update of chain `epoch` may gather: no gathering is open, or the open one
/// continues the same chain (its last value is the one the update started from).
pub(super) fn may_join(state: &KeyState, epoch: u64) -> bool {
    state
        .gathering
        .as_ref()
        .is_none_or(|gathering| gathering.epoch == epoch)
}

/// Where the outcome of the key's open (unsent) gathering will be told, if one is open.
pub(super) fn open(state: &KeyState) -> Option<watch::Receiver<Option<Landed>>> {
    state.gathering.as_ref().map(|gathering| gathering.done.clone())
}

/// Adds an update of chain `epoch` whose value is `value`, computed from `expected`, to the
/// key's gathering ([`may_join`] said yes), starting one if none is open; returns where its
/// outcome will be told. `local` is the key's lock, held by the caller and released here.
pub(super) fn join(
    space: &Arc<Space>,
    mut local: LocalGuard<KeyState>,
    epoch: u64,
    expected: Option<Version>,
    value: Value,
) -> watch::Receiver<Option<Landed>> {
    let state = local.data();
    if let Some(gathering) = &mut state.gathering {
        gathering.value = value;
        return gathering.done.clone();
    }
    let (tell, done) = watch::channel(None);
    state.gathering = Some(Gathering {
        epoch,
        expected,
        value,
        done: done.clone(),
    });
    let key = Arc::clone(local.name());
    drop(local);
    tokio::spawn(write(Arc::clone(space), key, tell));
    done
}

/// Waits for the outcome of the write an update joined.
pub(super) async fn landed(mut done: watch::Receiver<Option<Landed>>) -> Landed {
    match done.wait_for(Option::is_some).await {
        Ok(landed) => landed.clone().unwrap_or(Landed::Failed {
            unknown: true,
            message: "the write's outcome was not told".to_owned(),
        }),
        // The task only ends without telling if the runtime is shutting down under it.
        Err(_) => Landed::Failed {
            unknown: true,
            message: "the write's task ended before its outcome was known".to_owned(),
        },
    }
}

async fn write(space: Arc<Space>, key: Arc<str>, tell: watch::Sender<Option<Landed>>) {
    let Backend::Other(other) = &space.backend else {
        return;
    };
    // The updates waiting for the key's lock join while this task waits for its turn.
    tokio::task::yield_now().await;
    let mut local = other.updates.lock(&key).await;
    let Some(gathering) = local.data().gathering.take() else {
        let _ = tell.send(Some(Landed::Failed {
            unknown: false,
            message: format!("the write of key `{key}` was lost before it was sent"),
        }));
        return;
    };
    let mut write =
        other
            .store
            .compare_and_set(&space.memory, &key, gathering.expected.as_ref(), gathering.value, None);
    // Sent while holding the key, so that the store has this process's writes in the order their
    // bases were chained.
    let early = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    drop(local);
    let outcome = match early {
        std::task::Poll::Ready(outcome) => outcome,
        std::task::Poll::Pending => write.await,
    };
    let _ = tell.send(Some(Landed::of(outcome)));
}

/// The plain write (`set`) being gathered for a key.
pub(super) struct Setting {
    /// The last `set`'s value.
    value: Value,
    done: watch::Receiver<Option<Landed>>,
}

/// Adds a `set` of `value` to the key's gathered plain write, starting one if none is open;
/// returns where its outcome will be told. `local` is the key's lock, released here.
pub(super) fn join_set(
    space: &Arc<Space>,
    mut local: LocalGuard<KeyState>,
    value: Value,
) -> watch::Receiver<Option<Landed>> {
    let state = local.data();
    if let Some(setting) = &mut state.setting {
        setting.value = value;
        return setting.done.clone();
    }
    let (tell, done) = watch::channel(None);
    state.setting = Some(Setting {
        value,
        done: done.clone(),
    });
    let key = Arc::clone(local.name());
    drop(local);
    tokio::spawn(write_set(Arc::clone(space), key, tell));
    done
}

async fn write_set(space: Arc<Space>, key: Arc<str>, tell: watch::Sender<Option<Landed>>) {
    let Backend::Other(other) = &space.backend else {
        return;
    };
    tokio::task::yield_now().await;
    let mut local = other.updates.lock(&key).await;
    let Some(setting) = local.data().setting.take() else {
        let _ = tell.send(Some(Landed::Failed {
            unknown: false,
            message: format!("the write of key `{key}` was lost before it was sent"),
        }));
        return;
    };
    drop(local);
    let outcome = other.store.set(&space.memory, &key, setting.value).await;
    let _ = tell.send(Some(match outcome {
        Ok(()) => Landed::Done,
        Err(err) => Landed::failed(err),
    }));
}
