//! Layer 5: from the registrations to what runs them: the checks before a start, and each kind's
//! plan of handlers, bound to their shared memory and counters.

pub(crate) mod bound;
pub(crate) mod catalog;
pub(crate) mod gate;
pub(crate) mod plural;
pub(crate) mod validate;
