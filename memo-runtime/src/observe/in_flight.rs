//! What each worker is running right now, so that a stop that abandons work can name every
//! handler it left behind and the resource it was handling — even one stuck in a blocking call,
//! whose thread cannot be asked.

use crate::api::resource::ResourceKey;
use crate::observe::published::{CAPACITY, Published, Snapshot};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// One place per worker (or per lifecycle run). Written by that worker alone, once per handler
/// call; read by the stop, rarely.
#[derive(Default)]
pub(crate) struct Watch {
    busy: AtomicBool,
    /// What runs: the handler's place in `handlers`, and the resource's key as text.
    running: Published,
    /// Every handler this worker has run, in the order first seen: `running` names one by its
    /// place here. Locked only when a handler runs here for the first time, or when the first
    /// [`KNOWN`] do not hold it.
    handlers: Mutex<Vec<&'static dyn Running>>,
    /// The addresses of the first handlers in `handlers` (0: not yet), read without the lock.
    known: [AtomicUsize; KNOWN],
    /// A resource whose key is too long for `running` (the text there is then cut).
    long: Mutex<Option<ResourceKey>>,
}

/// How many handlers a worker finds without a lock: more than most kinds have.
const KNOWN: usize = 16;

impl Watch {
    /// Marks `handler` as running on `resource` until the guard is dropped. Cheap: plain stores,
    /// no lock and no reference count, paid once per handler call.
    pub(crate) fn enter(&self, handler: &'static dyn Running, resource: Option<&ResourceKey>) -> Entered<'_> {
        let text = resource.map(ResourceKey::text);
        if let Some(resource) = resource.filter(|key| key.text().len() > CAPACITY) {
            // Rare: a key without a uid, of the longest names and group.
            *self.long.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(resource.clone());
        }
        self.running.publish(self.place_of(handler), text);
        self.busy.store(true, Ordering::Release);
        Entered(self)
    }

    /// `handler`'s place in `handlers`, adding it there if it is new.
    fn place_of(&self, handler: &'static dyn Running) -> usize {
        let address = address_of(handler);
        for (place, known) in self.known.iter().enumerate() {
            match known.load(Ordering::Relaxed) {
                0 => break,
                seen if seen == address => return place,
                _ => {}
            }
        }
        let mut handlers = self.handlers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let place = match handlers.iter().position(|seen| address_of(*seen) == address) {
            Some(place) => place,
            None => {
                handlers.push(handler);
                handlers.len() - 1
            }
        };
        if let Some(known) = self.known.get(place) {
            known.store(address, Ordering::Relaxed);
        }
        place
    }

    /// What runs now: the handler, and its resource if it has one.
    fn running(&self) -> Option<(&'static dyn Running, Option<ResourceKey>)> {
        if !self.busy.load(Ordering::Acquire) {
            return None;
        }
        let Snapshot { number, text, cut } = self.running.read()?;
        let handler = *self
            .handlers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(number)?;
        let resource = text.map(|text| {
            let long = cut
                .then(|| {
                    self.long
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .clone()
                })
                .flatten()
                // The long key kept is this one, not one written since.
                .filter(|long| {
                    long.text()
                        .starts_with(text.trim_end_matches(char::REPLACEMENT_CHARACTER))
                });
            long.unwrap_or_else(|| ResourceKey::from_text(&text))
        });
        Some((handler, resource))
    }

    /// Logs what runs now, as abandoned by a stop.
    fn report_abandoned(&self) -> bool {
        let Some((handler, resource)) = self.running() else {
            // Finished meanwhile; or rewritten through every attempt to read it: still running
            // handlers, one after another, but none stuck.
            if !self.busy.load(Ordering::Acquire) {
                return false;
            }
            tracing::warn!(target: "memo", "a handler was abandoned: it did not finish within the shutdown timeout");
            return true;
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

/// Where a handler's registration is: what tells two handlers apart (never 0).
fn address_of(handler: &dyn Running) -> usize {
    std::ptr::from_ref(handler).cast::<()>().addr()
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Handler(&'static str);

    impl Running for Handler {
        fn id(&self) -> &'static str {
            self.0
        }
        fn trigger(&self) -> String {
            "event Ping".to_owned()
        }
        fn location(&self) -> String {
            "src/main.rs:1:1".to_owned()
        }
    }

    static HANDLERS: [Handler; 20] = [
        Handler("h0"),
        Handler("h1"),
        Handler("h2"),
        Handler("h3"),
        Handler("h4"),
        Handler("h5"),
        Handler("h6"),
        Handler("h7"),
        Handler("h8"),
        Handler("h9"),
        Handler("h10"),
        Handler("h11"),
        Handler("h12"),
        Handler("h13"),
        Handler("h14"),
        Handler("h15"),
        Handler("h16"),
        Handler("h17"),
        Handler("h18"),
        Handler("h19"),
    ];

    fn key(uid: &str, namespace: &str, name: &str) -> ResourceKey {
        ResourceKey::from_text(&format!("{uid}\0{namespace}\0{name}"))
    }

    fn seen(watch: &Watch) -> Option<(&'static str, Option<(String, String)>)> {
        watch.running().map(|(handler, key)| {
            (
                handler.id(),
                key.map(|key| (key.namespace().unwrap_or_default().to_owned(), key.name().to_owned())),
            )
        })
    }

    #[test]
    fn names_the_handler_and_resource_running_until_it_returns() {
        let watch = Watch::default();
        assert_eq!(seen(&watch), None);
        let entered = watch.enter(&HANDLERS[0], Some(&key("uid-1", "default", "web")));
        assert_eq!(seen(&watch), Some(("h0", Some(("default".into(), "web".into())))));
        drop(entered);
        assert_eq!(seen(&watch), None);
        let _entered = watch.enter(&HANDLERS[1], None);
        assert_eq!(seen(&watch), Some(("h1", None)));
    }

    #[test]
    fn tells_apart_more_handlers_than_it_finds_without_a_lock() {
        let watch = Watch::default();
        for round in 0..2 {
            for (index, handler) in HANDLERS.iter().enumerate() {
                let name = format!("r{round}-{index}");
                let _entered = watch.enter(handler, Some(&key("uid", "ns", &name)));
                assert_eq!(seen(&watch), Some((handler.0, Some(("ns".into(), name)))));
            }
        }
    }

    #[test]
    fn names_a_resource_whose_key_is_longer_than_the_record() {
        let watch = Watch::default();
        let long = "n".repeat(CAPACITY);
        let _entered = watch.enter(&HANDLERS[2], Some(&key("uid-long", "default", &long)));
        assert_eq!(seen(&watch), Some(("h2", Some(("default".into(), long.clone())))));
        drop(_entered);
        let _entered = watch.enter(&HANDLERS[2], Some(&key("uid-short", "default", "short")));
        assert_eq!(seen(&watch), Some(("h2", Some(("default".into(), "short".into())))));
    }

    #[test]
    fn in_flight_counts_the_busy_watches_it_reports() {
        let in_flight = InFlight::default();
        let (busy, idle) = (in_flight.watch(), in_flight.watch());
        let _entered = busy.enter(&HANDLERS[3], Some(&key("uid-3", "default", "db")));
        drop(idle.enter(&HANDLERS[4], None));
        assert_eq!(in_flight.report_abandoned(), 1);
    }
}
