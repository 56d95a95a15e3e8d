//! What each worker is running right now, so that a stop that abandons work can name every
//! handler it left behind and the resource it was handling — even one stuck in a blocking call,
//! whose thread cannot be asked.

use crate::api::resource::ResourceKey;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a report of an abandoned handler names. The handlers are registered in a layer above
/// this one, which implements it: so that what runs can be watched without knowing how it is
/// registered.
pub(crate) trait Running: Sync {
    /// The handler's id.
    fn id(&self) -> &'static str;
    /// What it handles, as its attribute says.
    fn trigger(&self) -> String;
    /// Where it is defined, `file:line:column`.
    fn location(&self) -> String;
}

/// One place per worker (or per lifecycle run).
#[derive(Default)]
pub(crate) struct Watch {
    busy: AtomicBool,
    running: Mutex<Option<Entry>>,
}

struct Entry {
    handler: &'static dyn Running,
    resource: Option<ResourceKey>,
}

impl Watch {
    /// Marks `handler` as running on `resource` until the guard is dropped. Cheap: one
    /// uncontended lock and one reference count, paid once per handler call.
    pub(crate) fn enter(&self, handler: &'static dyn Running, resource: Option<&ResourceKey>) -> Entered<'_> {
        let running = Entry {
            handler,
            resource: resource.cloned(),
        };
        // The previous entry is dropped outside the lock.
        let _previous = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(running);
        self.busy.store(true, Ordering::Release);
        Entered(self)
    }

    /// Logs what runs now, as abandoned by a stop.
    fn report_abandoned(&self) -> bool {
        if !self.busy.load(Ordering::Acquire) {
            return false;
        }
        let running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(Entry { handler, resource }) = running.as_ref() else {
            return false;
        };
        let location = handler.location();
        match resource {
            Some(key) => tracing::warn!(
                target: "memo",
                handler = handler.id(),
                trigger = handler.trigger(),
                namespace = key.namespace().unwrap_or_default(),
                name = key.name(),
                "handler `{}` at {location} abandoned: it did not finish within the shutdown timeout",
                handler.id(),
            ),
            None => tracing::warn!(
                target: "memo",
                handler = handler.id(),
                trigger = handler.trigger(),
                "handler `{}` at {location} abandoned: it did not finish within the shutdown timeout",
                handler.id(),
            ),
        }
        true
    }
}

/// Clears the mark when the handler returns, fails, panics, or is cancelled.
pub(crate) struct Entered<'a>(&'a Watch);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// The watches of every worker of one run, and what to do when the run is abandoned.
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<Vec<Arc<Watch>>>>, Arc<Mutex<Vec<AbandonHook>>>);

/// Run when a stop abandons the workers, which can no longer say what they left undone.
pub(crate) type AbandonHook = Box<dyn Fn() + Send + Sync>;

impl InFlight {
    /// A watch for one more worker.
    pub(crate) fn watch(&self) -> Arc<Watch> {
        let watch = Arc::<Watch>::default();
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::clone(&watch));
        watch
    }

    /// Logs every handler still running, and runs the hooks given to
    /// [`on_abandon`](InFlight::on_abandon); returns how many handlers.
    pub(crate) fn report_abandoned(&self) -> usize {
        for hook in self.1.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter() {
            hook();
        }
        let watches = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        watches.iter().filter(|watch| watch.report_abandoned()).count()
    }

    /// Runs `hook` if the run is abandoned.
    pub(crate) fn on_abandon(&self, hook: AbandonHook) {
        self.1
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(hook);
    }
}
