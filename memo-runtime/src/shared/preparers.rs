//! What prepares a shared memory, as the memory sees it.
//!
//! A memory keeps its preparers, and the first handler that needs it runs them. The preparers
//! are registered through the macro contract, a layer above this one: the memory holds them as
//! [`Prepare`] objects, which that layer implements, so that shared memory never depends on how
//! handlers are registered or called.

use crate::shared::Shared;
use std::future::Future;
use std::pin::Pin;

/// The run of one preparer: its failure says which preparer, where, and why.
pub(crate) type PrepareFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A preparer of shared memory.
pub(crate) trait Prepare: Sync {
    /// The component whose memory it prepares; `None` for the bot's.
    fn component(&self) -> Option<&'static str>;

    /// Runs it on `shared`.
    fn run<'a>(&'a self, shared: &'a Shared) -> PrepareFuture<'a>;
}
