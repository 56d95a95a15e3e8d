//! A handler bound to what its calls need, once per plan rather than per call.

use crate::contract::registry::Registration;
use crate::observe::metrics::{HandlerMetrics, Metrics};
use crate::plan::gate::Gate;
use crate::shared::{Shared, SharedMemory};

/// A handler with the shared memory it asks for, and its counters, resolved once, when its
/// kind's plan is made.
pub(crate) struct Bound {
    pub(crate) handler: &'static Registration,
    pub(crate) shared: Option<Shared>,
    /// `None` unless the operator serves metrics.
    pub(crate) metrics: Option<HandlerMetrics>,
    /// `None` unless the handler filters objects.
    pub(crate) gate: Option<Box<Gate>>,
}

impl Bound {
    pub(crate) fn new(handler: &'static Registration, memory: &SharedMemory, metrics: Option<&Metrics>) -> Self {
        Bound {
            handler,
            shared: handler.uses_shared.then(|| memory.space(handler.component)),
            metrics: metrics.map(|metrics| metrics.handler(handler.id)),
            gate: Gate::of(handler),
        }
    }
}
