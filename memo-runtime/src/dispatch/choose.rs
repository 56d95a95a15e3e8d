//! Which of an event's handlers run: their object filters, and for an `update` handler whether
//! what it watches changed since the last version of the object handled.

use crate::api::resource::Resource;
use crate::contract::seen::{Seen, Versions};
use crate::plan::bound::Bound;
use serde_json::Value;

/// Whether one handler runs on one object.
pub(crate) enum Choice<'v> {
    Skip,
    /// It runs; an `update` handler with what it sees changed.
    Run(Option<Seen<'v>>),
}

/// Whether `bound` runs on `body`. `versions` compares the object with its last handled
/// version, for the `MODIFIED` events of a kind with `update` handlers, once there is one.
pub(crate) fn choose<'v>(
    bound: &Bound,
    body: Option<&Value>,
    versions: Option<&'v Versions<'v>>,
    resource: &Resource<'_>,
) -> Choice<'v> {
    let handler = bound.handler;
    let seen = if handler.trigger.is_update() {
        let Some(versions) = versions else {
            skipped(
                bound,
                resource,
                "the object is new to this operator: this version is the base of its next change",
            );
            return Choice::Skip;
        };
        let seen = Seen::new(versions, handler.filters.field);
        if !seen.changed() {
            let why = match handler.filters.field {
                Some(_) => "its field did not change",
                None => "only the status or metadata other than labels and annotations changed",
            };
            skipped(bound, resource, why);
            return Choice::Skip;
        }
        Some(seen)
    } else {
        None
    };
    if let Some(gate) = &bound.gate
        && !body.is_some_and(|body| gate.admits(body))
    {
        skipped(bound, resource, "its filters do not match the object");
        return Choice::Skip;
    }
    Choice::Run(seen)
}

fn skipped(bound: &Bound, resource: &Resource<'_>, why: &str) {
    let id = bound.handler.id;
    tracing::trace!(
        target: "memo",
        handler = id,
        kind = resource.kind,
        namespace = resource.namespace().unwrap_or_default(),
        name = resource.name(),
        "handler `{id}` not run: {why}"
    );
}
