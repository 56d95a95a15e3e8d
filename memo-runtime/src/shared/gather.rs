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
use crate::store::{MemoryId, Store, Version, Versioned, Written};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
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

/// A write being gathered for a key: the last value joined, and where its outcome is told.
/// `W` says what kind of write it is.
pub(super) struct Gathering<W> {
    write: W,
    value: Value,
    done: watch::Receiver<Option<Landed>>,
}

/// What differs between the two kinds of gathered write: where a key keeps the open one, and
/// how it goes to the store.
pub(super) trait Write: Send + Sized + 'static {
    fn slot(state: &mut KeyState) -> &mut Option<Gathering<Self>>;

    fn send<'a>(&'a self, store: &'a dyn Store, memory: &'a MemoryId, key: &'a str, value: Value) -> Sending<'a>;
}

type Sending<'a> = Pin<Box<dyn Future<Output = Landed> + Send + 'a>>;

/// Updates: a compare-and-set from the version the first started from.
pub(super) struct Chained {
    /// The chain it continues (`KeyState::epoch`): only an update computed on its last value, in
    /// the same chain, may join it.
    epoch: u64,
    expected: Option<Version>,
}

impl Write for Chained {
    fn slot(state: &mut KeyState) -> &mut Option<Gathering<Self>> {
        &mut state.gathering
    }

    fn send<'a>(&'a self, store: &'a dyn Store, memory: &'a MemoryId, key: &'a str, value: Value) -> Sending<'a> {
        let write = store.compare_and_set(memory, key, self.expected.as_ref(), value, None);
        Box::pin(async move { Landed::of(write.await) })
    }
}

/// `set`s: a plain write of the last value.
pub(super) struct Plain;

impl Write for Plain {
    fn slot(state: &mut KeyState) -> &mut Option<Gathering<Self>> {
        &mut state.setting
    }

    fn send<'a>(&'a self, store: &'a dyn Store, memory: &'a MemoryId, key: &'a str, value: Value) -> Sending<'a> {
        let write = store.set(memory, key, value);
        Box::pin(async move {
            match write.await {
                Ok(()) => Landed::Done,
                Err(err) => Landed::failed(err),
            }
        })
    }
}

/// Whether an update of chain `epoch` may gather: no gathering is open, or the open one
/// continues the same chain (its last value is the one the update started from).
pub(super) fn may_join(state: &KeyState, epoch: u64) -> bool {
    state
        .gathering
        .as_ref()
        .is_none_or(|gathering| gathering.write.epoch == epoch)
}

/// Where the outcome of the key's open (unsent) update gathering will be told, if one is open.
pub(super) fn open(state: &KeyState) -> Option<watch::Receiver<Option<Landed>>> {
    state.gathering.as_ref().map(|gathering| gathering.done.clone())
}

/// Adds an update of chain `epoch` whose value is `value`, computed from `expected`, to the
/// key's gathering ([`may_join`] said yes), starting one if none is open; returns where its
/// outcome will be told. `local` is the key's lock, held by the caller and released here.
pub(super) fn join(
    space: &Arc<Space>,
    local: LocalGuard<KeyState>,
    epoch: u64,
    expected: Option<Version>,
    value: Value,
) -> watch::Receiver<Option<Landed>> {
    gather(space, local, Chained { epoch, expected }, value)
}

/// Adds a `set` of `value` to the key's gathered plain write, starting one if none is open;
/// returns where its outcome will be told. `local` is the key's lock, released here.
pub(super) fn join_set(
    space: &Arc<Space>,
    local: LocalGuard<KeyState>,
    value: Value,
) -> watch::Receiver<Option<Landed>> {
    gather(space, local, Plain, value)
}

fn gather<W: Write>(
    space: &Arc<Space>,
    mut local: LocalGuard<KeyState>,
    write: W,
    value: Value,
) -> watch::Receiver<Option<Landed>> {
    let slot = W::slot(local.data());
    if let Some(gathering) = slot {
        gathering.value = value;
        return gathering.done.clone();
    }
    let (tell, done) = watch::channel(None);
    *slot = Some(Gathering {
        write,
        value,
        done: done.clone(),
    });
    let key = Arc::clone(local.name());
    drop(local);
    tokio::spawn(send::<W>(Arc::clone(space), key, tell));
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

async fn send<W: Write>(space: Arc<Space>, key: Arc<str>, tell: watch::Sender<Option<Landed>>) {
    let Backend::Other(other) = &space.backend else {
        return;
    };
    // The writes waiting for the key's lock join while this task waits for its turn.
    tokio::task::yield_now().await;
    let mut local = other.updates.lock(&key).await;
    let Some(gathering) = W::slot(local.data()).take() else {
        let _ = tell.send(Some(Landed::Failed {
            unknown: false,
            message: format!("the write of key `{key}` was lost before it was sent"),
        }));
        return;
    };
    let mut write = gathering
        .write
        .send(other.store.as_ref(), &space.memory, &key, gathering.value);
    // Sent while holding the key, so that the store has this process's writes in the order their
    // bases were chained.
    let early = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    drop(local);
    let landed = match early {
        std::task::Poll::Ready(landed) => landed,
        std::task::Poll::Pending => write.await,
    };
    let _ = tell.send(Some(landed));
}
