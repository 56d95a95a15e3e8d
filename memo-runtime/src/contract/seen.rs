//! What an `update` handler sees changed: its `old`, `new` and `diff`, made only when a handler
//! asks for them.

use crate::api::diff::Diff;
use crate::api::essence::{essence, same_essence};
use crate::api::field::field_value;
use serde_json::Value;
use std::sync::OnceLock;

/// The last version of an object this operator handled and the one a `MODIFIED` event brings.
pub struct Versions<'a> {
    old: &'a Value,
    /// Whether `old` is an essence already (recorded on the object), not an object.
    old_is_essence: bool,
    new: &'a Value,
    /// The prefix of the annotations left out of the essences (the operator's own).
    excluded: &'a str,
    changed: bool,
    /// Both essences, made together on first use: a field's change or a handler's `old`, `new`
    /// or `diff` needs both.
    essences: OnceLock<(Value, Value)>,
    /// The whole essences' diff, shared by the handlers without `field`.
    diff: OnceLock<Diff>,
}

impl<'a> Versions<'a> {
    /// Compares the two versions; their essences are made later, if needed.
    #[cfg(test)]
    pub(crate) fn new(old: &'a Value, new: &'a Value) -> Self {
        Versions::excluding(old, new, crate::api::essence::MEMO_ANNOTATIONS)
    }

    /// The same, leaving out the annotations under `excluded` (the operator's own).
    pub(crate) fn excluding(old: &'a Value, new: &'a Value, excluded: &'a str) -> Self {
        Versions {
            old,
            old_is_essence: false,
            new,
            excluded,
            changed: !same_essence(old, new, excluded),
            essences: OnceLock::new(),
            diff: OnceLock::new(),
        }
    }

    /// Compares an essence recorded earlier (`Value::Null`: unknown) with the object `new`.
    pub(crate) fn from_essence(old: &'a Value, new: &'a Value, excluded: &'a str) -> Self {
        let essences = OnceLock::new();
        let new_essence = essence(new, excluded);
        let changed = *old != new_essence;
        let _ = essences.set((old.clone(), new_essence));
        Versions {
            old,
            old_is_essence: true,
            new,
            excluded,
            changed,
            essences,
            diff: OnceLock::new(),
        }
    }

    /// Whether the object's essence changed: whether its `update` handlers run.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    fn essences(&self) -> &(Value, Value) {
        self.essences.get_or_init(|| {
            let old = if self.old_is_essence {
                self.old.clone()
            } else {
                essence(self.old, self.excluded)
            };
            (old, essence(self.new, self.excluded))
        })
    }
}

/// What one `update` handler sees: the whole essences, or its `field`'s values in them.
pub struct Seen<'a> {
    versions: &'a Versions<'a>,
    field: Option<&'static str>,
    /// The field's diff; the whole essences' is shared, in [`Versions`].
    field_diff: OnceLock<Diff>,
}

impl<'a> Seen<'a> {
    pub(crate) fn new(versions: &'a Versions<'a>, field: Option<&'static str>) -> Self {
        Seen {
            versions,
            field,
            field_diff: OnceLock::new(),
        }
    }

    /// Whether what this handler watches changed.
    pub(crate) fn changed(&self) -> bool {
        self.versions.changed() && (self.field.is_none() || self.before() != self.after())
    }

    /// A handler's `old`.
    pub(crate) fn before(&self) -> &Value {
        self.pick(&self.versions.essences().0)
    }

    /// A handler's `new`.
    pub(crate) fn after(&self) -> &Value {
        self.pick(&self.versions.essences().1)
    }

    pub(crate) fn diff(&self) -> &Diff {
        let diff = match self.field {
            Some(_) => &self.field_diff,
            None => &self.versions.diff,
        };
        diff.get_or_init(|| Diff::between(self.before(), self.after()))
    }

    fn pick<'v>(&self, essence: &'v Value) -> &'v Value {
        match self.field {
            Some(path) => field_value(essence, path),
            None => essence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_field_changes_with_its_value_only() {
        let old = json!({"spec": {"size": 1, "image": "a"}, "status": {"phase": "x"}});
        let new = json!({"spec": {"size": 1, "image": "b"}, "status": {"phase": "y"}});
        let versions = Versions::new(&old, &new);
        assert!(versions.changed());
        assert!(Seen::new(&versions, Some("spec.image")).changed());
        let size = Seen::new(&versions, Some("spec.size"));
        assert!(!size.changed());
        assert!(size.diff().is_empty());
        let status = Seen::new(&versions, Some("status.phase"));
        assert_eq!((status.before(), status.after()), (&Value::Null, &Value::Null));
        let whole = Seen::new(&versions, None);
        assert_eq!(whole.diff().len(), 1);
        assert_eq!(whole.diff().iter().next().unwrap().path(), "/spec/image");
    }

    #[test]
    fn status_only_is_no_change() {
        let old = json!({"spec": {"size": 1}, "status": {"phase": "x"}, "metadata": {"resourceVersion": "1"}});
        let new = json!({"spec": {"size": 1}, "status": {"phase": "y"}, "metadata": {"resourceVersion": "2"}});
        let versions = Versions::new(&old, &new);
        assert!(!versions.changed());
        assert!(versions.essences.get().is_none(), "nothing was made");
    }
}
