//! Attribute macros of the memo framework. Use them through `memo_runtime`, which re-exports
//! them: `use memo_runtime::prelude::*;`.
//!
//! The entry points are thin: arguments are parsed in `args` (filters in `filters`), the
//! signature is read in `sig`, cross-checks live in `check`, and `codegen` writes the wrapper and
//! its registration.

#![warn(missing_docs)]

mod args;
mod check;
mod codegen;
mod duration;
mod duration_text;
mod errors;
mod expand;
mod filters;
mod resource;
// The macros only check selectors; what a parsed one holds is read by the runtime's copy.
#[allow(dead_code)]
mod selector;
mod sig;
mod suggest;

use proc_macro::TokenStream;

/// Registers a function as a handler. See `memo_runtime::handler` for the full documentation.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::handler(args.into(), item.into()).into()
}

/// Registers an async function that fills the shared memory the first time it is needed. See
/// `memo_runtime::prepare_memory` for the full documentation.
#[proc_macro_attribute]
pub fn prepare_memory(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::prepare_memory(args.into(), item.into()).into()
}
