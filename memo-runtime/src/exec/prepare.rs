//! Preparing a shared memory: its preparers run exactly once per memory per store, before the
//! first handler that needs it, even when several workers or replicas need it at the same instant.
//!
//! The store only keeps a "prepared" mark and a preparation lease; this is the runtime side. One
//! caller wins the lease and runs the preparers (renewing the lease meanwhile), the others wait for
//! the mark. A failing preparer leaves the memory unprepared, so the next access tries again; a
//! replica that dies while preparing leaves a lease that runs out, and another one takes over.

use crate::api::logger::Logger;
use crate::contract::context::{Context, Env};
use crate::contract::outcome::Outcome;
use crate::contract::registry::Preparer;
use crate::exec::catch::CatchUnwind;
use crate::observe::in_flight::Watch;
use crate::shared::Shared;
use crate::shared::preparers::{Prepare, PrepareFuture};
use crate::store::backoff::Backoff;
use crate::store::{MemoryId, Preparation, Store, new_token};
use std::sync::Arc;
use std::time::Duration;

/// Runs `shared`'s preparers unless its store says they ran; says which preparer failed, where
/// and why, or why the store could not tell.
pub(crate) async fn ensure_prepared(shared: &Shared) -> Result<(), String> {
    if shared.known_prepared() {
        return Ok(());
    }
    // Callers in this process queue here: one at a time asks the store, the others then find the
    // memory known to be prepared.
    let _queue = shared.preparing().lock().await;
    let store = shared.store();
    let memory = shared.memory();
    let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(250));
    loop {
        if shared.known_prepared() {
            return Ok(());
        }
        let holder = new_token();
        let state = store
            .begin_preparation(memory, &holder)
            .await
            .map_err(|err| format!("cannot learn whether it is prepared: {err}"))?;
        match state {
            Preparation::Prepared => {
                shared.mark_known_prepared();
                return Ok(());
            }
            Preparation::Busy => backoff.wait().await,
            Preparation::Won => {
                let renewal = tokio::spawn(renew(Arc::clone(&store), memory.clone(), holder.clone()));
                let outcome = run_preparers(shared).await;
                renewal.abort();
                let finished = store.finish_preparation(memory, &holder, outcome.is_ok()).await;
                outcome?;
                finished.map_err(|err| format!("its preparers ran, but the store did not record it: {err}"))?;
                shared.mark_known_prepared();
                return Ok(());
            }
        }
    }
}

async fn run_preparers(shared: &Shared) -> Result<(), String> {
    for &preparer in shared.preparers() {
        preparer.run(shared).await?;
    }
    Ok(())
}

/// Keeps the preparation lease while the preparers run, so that slow preparers are not taken over.
async fn renew(store: Arc<dyn Store>, memory: MemoryId, holder: String) {
    let period = store.lease() / 3;
    loop {
        tokio::time::sleep(period).await;
        match store.renew_preparation(&memory, &holder).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(target: "memo", "the preparation lease of {memory} was lost: another replica may prepare it too");
                return;
            }
            Err(err) => tracing::warn!(target: "memo", "cannot renew the preparation lease of {memory}: {err}"),
        }
    }
}

/// The memory sees a preparer as something to run on it; here is how one is run.
impl Prepare for Preparer {
    fn component(&self) -> Option<&'static str> {
        self.component
    }

    fn run<'a>(&'a self, shared: &'a Shared) -> PrepareFuture<'a> {
        Box::pin(async move {
            call_preparer(self, shared)
                .await
                .map_err(|err| format!("preparer `{}` at {} failed: {err}", self.id, self.location()))
        })
    }
}

/// Runs one preparer on its memory.
async fn call_preparer(preparer: &Preparer, shared: &Shared) -> Outcome {
    let logger = once_cell::race::OnceBox::with_value(Box::new(Logger::operator()));
    let watch = Watch::default();
    let env = Env::new(None, None, None, &logger, &watch);
    let mut no_memo = ();
    let mut cx = Context {
        memo: &mut no_memo,
        env: &env,
        shared: Some(shared),
        seen: None,
        labels: None,
        annotations: None,
        patch: None,
        recorder: None,
        retry: 0,
    };
    CatchUnwind((preparer.invoke)(&mut cx), None).await
}
