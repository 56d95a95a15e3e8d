//! A handler's object filters (`labels`, `annotations`, `when`), parsed once per plan.

use crate::api::selector::{Selector, SelectorError};
use crate::contract::registry::{Filters, Registration, When};
use serde_json::Value;

/// What an object must be for a handler to run on it.
pub(crate) struct Gate {
    labels: Option<Selector>,
    annotations: Option<Selector>,
    when: Option<When>,
    /// A selector did not parse: the handler never runs.
    broken: bool,
}

impl Gate {
    /// The handler's gate, or `None` when it filters no object (the common case, checked first).
    ///
    /// A selector the macro checked parses here too (`selectors_read_alike` keeps both parsers in
    /// step); one that does not (a registration made by hand) is logged, and the handler never
    /// runs.
    pub(crate) fn of(handler: &'static Registration) -> Option<Box<Gate>> {
        let Filters {
            labels,
            annotations,
            when,
            ..
        } = handler.filters;
        if !handler.filters.filters_objects() {
            return None;
        }
        let mut broken = false;
        let mut parse = |text: &str, parse: fn(&str) -> Result<Selector, SelectorError>| {
            parse(text)
                .map_err(|err| {
                    tracing::error!(target: "memo", handler = handler.id, "handler `{}` never runs: {err}", handler.id);
                    broken = true;
                })
                .ok()
        };
        let labels = labels.and_then(|text| parse(text, Selector::labels));
        let annotations = annotations.and_then(|text| parse(text, Selector::annotations));
        Some(Box::new(Gate {
            labels,
            annotations,
            when,
            broken,
        }))
    }

    /// Whether the object passes every filter; the cheapest are asked first, `when` (the user's
    /// code) last.
    pub(crate) fn admits(&self, body: &Value) -> bool {
        !self.broken
            && self.labels.as_ref().is_none_or(|selector| selector.matches_body(body))
            && self
                .annotations
                .as_ref()
                .is_none_or(|selector| selector.matches_body(body))
            && self.when.is_none_or(|when| when(body))
    }
}
