//! TEMP
#![forbid(unsafe_code)]

mod catalog;
pub mod cli;
mod dispatch;
mod error;
mod event;
mod inject;
mod invoke;
mod logger;
mod memo;
mod operator;
pub mod registry;
mod shared;
pub mod source;

pub use cli::{run, run_with};
pub use error::{Error, Result};
pub use event::{Event, EventType};
pub use logger::Logger;
pub use memo::{Memo, MemoError};
pub use memo_macros::{handler, prepare_memory};
pub use operator::Operator;
pub use registry::registered_handler_count;
pub use shared::{LockGuard, Shared};

/// Everything a handler module needs: `use memo_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        handler, prepare_memory, Error, Event, EventType, LockGuard, Logger, Memo, Operator, Result, Shared,
    };
}

/// Not public API: what the attribute macros' expansions refer to.
#[doc(hidden)]
pub mod __private {
    pub use crate::inject::{
        memo_type_of, BodyArg, Context, EventArg, HandlerError, InjectError, IntoOutcome, LoggerArg, MemoArg, NameArg,
        NamespaceArg, Outcome, SharedArg, UidArg,
    };
    pub use crate::registry::{BoxFuture, EventFilter, Invoke, MemoType, Preparer, Registration, Trigger};
    pub use inventory;
    pub use std::time::Duration;

    /// The outcome of a wrapper whose injection failed.
    pub fn injection_failed(err: InjectError) -> Outcome {
        Err(err.into())
    }

    /// Boxes an async handler's future; requiring `Send` here makes rustc point a non-`Send`
    /// future at the handler.
    pub fn boxed_handler_future<'a>(
        future: impl std::future::Future<Output = Outcome> + Send + 'a,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(future)
    }

    /// The future of an async wrapper whose injection failed.
    pub fn injection_failed_async<'a>(err: InjectError) -> BoxFuture<'a, Outcome> {
        Box::pin(std::future::ready(Err(err.into())))
    }
}
