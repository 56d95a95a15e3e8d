//! The checks run on the registrations before an operator starts: what the macros cannot see,
//! because it needs the whole program.

use crate::api::problem::Problem;
use crate::contract::registry::{MemoType, Preparer, Registration, Trigger};

/// Checks what the macros cannot see: that every handler's memo type is the operator's, that
/// explicit ids are unique across the whole program, and that a handler asking for a `client`
/// will get one (`has_client`).
pub(crate) fn validate(
    handlers: &[&'static Registration],
    preparers: &[&'static Preparer],
    memo: MemoType,
    has_client: bool,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !has_client {
        for handler in handlers.iter().filter(|handler| handler.uses_client) {
            problems.push(Problem::new(
                "M0005",
                format!(
                    "handler `{}` at {} asks for `client`, but the operator does not run against a cluster: \
                     run it against one (without `--source`), or give it a client with `Operator::client`",
                    handler.id,
                    handler.location(),
                ),
            ));
        }
    }
    for preparer in preparers {
        if let Some(component) = preparer.component
            && !handlers.iter().any(|handler| handler.component == Some(component))
        {
            problems.push(Problem::new("M0004", format!(
                        "preparer `{}` at {} prepares component `{component}`, but no handler has `component = \"{component}\"`; \
                         fix the component name, or remove the preparer",
                        preparer.id,
                        preparer.location(),
                    )));
        }
    }
    for handler in handlers {
        if let Some(memo_type) = handler.memo_type {
            let wanted = memo_type();
            if wanted.id != memo.id {
                problems.push(Problem::new(
                    "M0001",
                    format!(
                        "handler `{}` at {} asks for a memo of type `{}`, but the operator's memo is `{}`; \
                         pass a `{}` with `Operator::memo(...)`, or change the handler's `memo` parameter",
                        handler.id,
                        handler.location(),
                        wanted.name,
                        memo.name,
                        wanted.name,
                    ),
                ));
            }
        }
        if let Trigger::Timer { interval, .. } = handler.trigger
            && interval.is_zero()
        {
            problems.push(Problem::new(
                "M0003",
                format!("timer `{}` at {} has a zero interval", handler.id, handler.location()),
            ));
        }
    }
    let mut explicit: Vec<&&'static Registration> = handlers.iter().filter(|h| h.explicit_id).collect();
    explicit.sort_by_key(|h| h.id);
    for pair in explicit.windows(2) {
        if pair[0].id == pair[1].id {
            problems.push(Problem::new("M0002", format!(
                    "two handlers have the id `{}`: {} at {} and {} at {}; ids name handlers in logs and must be unique",
                    pair[0].id,
                    pair[0].describe_trigger(),
                    pair[0].location(),
                    pair[1].describe_trigger(),
                    pair[1].location(),
                )));
        }
    }
    problems
}
