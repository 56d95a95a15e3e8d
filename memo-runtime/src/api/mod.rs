//! Layer 1, at the bottom: the vocabulary every other layer speaks, and most of what users name.
//! Nothing here imports another layer.

pub(crate) mod diff;
pub(crate) mod error;
pub(crate) mod essence;
pub(crate) mod event;
pub(crate) mod field;
pub(crate) mod labels;
pub(crate) mod logger;
pub(crate) mod memo;
pub(crate) mod patch;
pub(crate) mod pointer;
pub(crate) mod post_events;
pub(crate) mod problem;
pub(crate) mod recorder;
pub(crate) mod resource;
pub(crate) mod selector;
pub(crate) mod selector_text;
pub mod shard;
pub(crate) mod signal;
