//! Layer 1, at the bottom: the vocabulary every other layer speaks, and most of what users name.
//! Nothing here imports another layer.

pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod logger;
pub(crate) mod memo;
pub(crate) mod problem;
pub(crate) mod resource;
pub mod shard;
pub(crate) mod signal;
