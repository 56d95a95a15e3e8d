//! Layer 6: running handlers, one call at a time: calling one, catching its panic, preparing its
//! shared memory, deciding its retry; the threads calls run on, and how a run stops.

pub(crate) mod catch;
pub(crate) mod dedicated;
pub(crate) mod invoke;
pub(crate) mod prepare;
pub(crate) mod progress;
pub(crate) mod retry;
pub(crate) mod stop;
pub(crate) mod writeback;
