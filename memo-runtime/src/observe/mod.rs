//! Layer 2: what an operator tells about itself. Counters and health are written from every
//! layer above, so they sit low and know nothing of handlers or stores.

pub(crate) mod escaped;
pub(crate) mod health;
pub(crate) mod in_flight;
pub(crate) mod json_lines;
pub(crate) mod liveness;
pub(crate) mod metrics;
pub(crate) mod published;
pub(crate) mod text_fields;
