//! Where handlers run: on threads of their own, off the async runtime's core threads.
//!
//! A sync handler that blocks (a `std::thread::sleep`, a blocking client, a deadlock) blocks the
//! thread it runs on. On a tokio worker thread that starves every task of the runtime: timers,
//! signals, the source, other resources. So on a multi-threaded runtime every worker is a
//! dedicated thread driving its future with [`Handle::block_on`]: a blocked handler costs
//! exactly one worker, and a stop can leave it behind. A current-thread runtime has no other
//! thread to keep going, so there the work is a task as any other (tests with paused time rely
//! on that).
//!
//! With one worker the event loop runs handlers itself, as a task: a hop to another thread per
//! event would halve its throughput. A blocking handler then holds up that loop (every resource
//! and timer, as one worker means anyway) and one core thread, but not the signals or the stop.

use std::future::Future;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

/// Runs `future` on a dedicated thread named `name` (or as a task on a current-thread runtime);
/// its output arrives on the receiver. Dropping the receiver does not stop the work: it stops
/// itself when told to (see `Stop`), or is left behind.
pub(crate) fn spawn<F>(name: String, future: F) -> oneshot::Receiver<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = Handle::current();
    if handle.runtime_flavor() == RuntimeFlavor::CurrentThread {
        return task(future);
    }
    let (sender, receiver) = oneshot::channel();
    let on_thread = {
        let handle = handle.clone();
        move |(future, sender): (F, oneshot::Sender<F::Output>)| {
            let _ = sender.send(handle.block_on(future));
        }
    };
    // The closure owns the work until the thread starts; if it cannot start, run it as a task.
    let work = std::sync::Arc::new(std::sync::Mutex::new(Some((future, sender))));
    let for_thread = std::sync::Arc::clone(&work);
    let spawned = std::thread::Builder::new().name(name.clone()).spawn(move || {
        let taken = for_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(work) = taken {
            on_thread(work);
        }
    });
    if let Err(err) = spawned {
        let taken = work.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some((future, sender)) = taken {
            tracing::warn!(target: "memo", "cannot start thread `{name}` ({err}); running its work as a task");
            handle.spawn(async move {
                let _ = sender.send(future.await);
            });
        }
    }
    receiver
}

/// Runs `future` as a task of the current runtime; its output arrives on the receiver.
pub(crate) fn task<F>(future: F) -> oneshot::Receiver<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (sender, receiver) = oneshot::channel();
    tokio::spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver
}
