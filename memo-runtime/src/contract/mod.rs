//! Layer 4: what the attribute macros' expansions are written against. Reachable from outside
//! only through `__private`; changing a name here changes what the macros must generate.

pub(crate) mod cluster;
pub(crate) mod context;
pub(crate) mod inject;
pub(crate) mod inject_change;
pub(crate) mod inject_cluster;
pub(crate) mod inject_object;
pub(crate) mod outcome;
pub(crate) mod registry;
pub(crate) mod seen;
