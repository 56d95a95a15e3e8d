//! What changed between two versions of a value: a handler's `diff`.

use crate::api::pointer;
use serde_json::{Map, Value};
use std::fmt;

/// What happened to one field.
///
/// ```
/// use memo_runtime::{Diff, DiffOp};
/// use serde_json::json;
///
/// let diff = Diff::between(&json!({"a": 1, "b": 2}), &json!({"b": 3, "c": 4}));
/// let ops: Vec<DiffOp> = diff.iter().map(|change| change.op()).collect();
/// assert_eq!(ops, [DiffOp::Remove, DiffOp::Change, DiffOp::Add]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiffOp {
    /// The field is new: it has a new value and no old one.
    Add,
    /// The field has another value (`null` included): both are there.
    Change,
    /// The field is gone: it has an old value and no new one.
    Remove,
}

impl fmt::Display for DiffOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiffOp::Add => "add",
            DiffOp::Change => "change",
            DiffOp::Remove => "remove",
        })
    }
}

/// One field that changed: where, how, and its values before and after.
///
/// ```
/// use memo_runtime::{Diff, DiffOp};
/// use serde_json::json;
///
/// let diff = Diff::between(&json!({"spec": {"size": 1}}), &json!({"spec": {"size": 3}}));
/// let change = diff.iter().next().unwrap();
/// assert_eq!(change.op(), DiffOp::Change);
/// assert_eq!(change.path(), "/spec/size");
/// assert_eq!((change.old(), change.new()), (Some(&json!(1)), Some(&json!(3))));
/// assert_eq!(change.to_string(), "change /spec/size: 1 -> 3");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DiffChange {
    op: DiffOp,
    path: String,
    old: Option<Value>,
    new: Option<Value>,
}

impl DiffChange {
    /// Whether the field was added, changed or removed.
    ///
    /// ```
    /// use memo_runtime::{Diff, DiffOp};
    /// use serde_json::json;
    ///
    /// let diff = Diff::between(&json!({}), &json!({"a": 1}));
    /// assert_eq!(diff.iter().next().unwrap().op(), DiffOp::Add);
    /// ```
    pub fn op(&self) -> DiffOp {
        self.op
    }

    /// Where the field is, as a JSON Pointer (RFC 6901): `/spec/size`,
    /// `/metadata/annotations/example.com~1key` (`/` in a key is written `~1`, `~` is `~0`), or
    /// `""` when the compared values are not both objects and the whole value changed.
    ///
    /// ```
    /// use memo_runtime::Diff;
    /// use serde_json::json;
    ///
    /// let old = json!({"metadata": {"labels": {}}});
    /// let new = json!({"metadata": {"labels": {"example.com/tier": "web"}}});
    /// let diff = Diff::between(&old, &new);
    /// assert_eq!(diff.iter().next().unwrap().path(), "/metadata/labels/example.com~1tier");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The field's value before: `None` for [`DiffOp::Add`].
    ///
    /// ```
    /// use memo_runtime::Diff;
    /// use serde_json::json;
    ///
    /// let diff = Diff::between(&json!({"a": 1}), &json!({}));
    /// assert_eq!(diff.iter().next().unwrap().old(), Some(&json!(1)));
    /// ```
    pub fn old(&self) -> Option<&Value> {
        self.old.as_ref()
    }

    /// The field's value after: `None` for [`DiffOp::Remove`].
    ///
    /// ```
    /// use memo_runtime::Diff;
    /// use serde_json::json;
    ///
    /// let diff = Diff::between(&json!({"a": 1}), &json!({}));
    /// assert_eq!(diff.iter().next().unwrap().new(), None);
    /// ```
    // `new` pairs with `old`, as a handler's `old` and `new` do; it builds nothing.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(&self) -> Option<&Value> {
        self.new.as_ref()
    }
}

impl fmt::Display for DiffChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.path)?;
        match (&self.old, &self.new) {
            (Some(old), Some(new)) => write!(f, ": {old} -> {new}"),
            (None, Some(new)) => write!(f, ": {new}"),
            (Some(old), None) => write!(f, " (was {old})"),
            (None, None) => Ok(()),
        }
    }
}

/// What changed between two versions of a value: a handler's `diff`, its object's essence
/// before and after the event (or its field's values, with `field = "…"`).
///
/// Objects are compared key by key, recursively: a changed field deep inside is one change at
/// its own path. Arrays and scalars are compared as whole values: a changed element is a change
/// of the whole array. A key whose value becomes `null` is changed, not removed. The changes
/// come in path order.
///
/// ```
/// use memo_runtime::{Diff, DiffOp};
/// use serde_json::json;
///
/// let old = json!({"spec": {"size": 1, "ports": [80]}, "metadata": {"labels": {"tier": "web"}}});
/// let new = json!({"spec": {"size": 3, "ports": [80, 443]}, "metadata": {"labels": {}}});
/// let diff = Diff::between(&old, &new);
/// let changes: Vec<String> = diff.iter().map(ToString::to_string).collect();
/// assert_eq!(
///     changes,
///     [
///         r#"remove /metadata/labels/tier (was "web")"#,
///         "change /spec/ports: [80] -> [80,443]",
///         "change /spec/size: 1 -> 3",
///     ]
/// );
/// assert_eq!(diff.len(), 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    changes: Vec<DiffChange>,
}

impl Diff {
    /// The changes from `old` to `new`.
    ///
    /// `null` at the top stands for a value that is absent (a field that does not exist): from
    /// `null` to a value is one [`DiffOp::Add`] at path `""`, the other way a
    /// [`DiffOp::Remove`]. Two values that are not both objects and differ are one
    /// [`DiffOp::Change`] at `""`.
    ///
    /// ```
    /// use memo_runtime::{Diff, DiffOp};
    /// use serde_json::{json, Value};
    ///
    /// assert!(Diff::between(&json!({"a": [1]}), &json!({"a": [1]})).is_empty());
    /// let added = Diff::between(&Value::Null, &json!(3));
    /// let change = added.iter().next().unwrap();
    /// assert_eq!((change.op(), change.path()), (DiffOp::Add, ""));
    /// ```
    pub fn between(old: &Value, new: &Value) -> Diff {
        let mut changes = Vec::new();
        match (old, new) {
            (Value::Null, Value::Null) => {}
            (Value::Null, new) => changes.push(DiffChange::added(String::new(), new)),
            (old, Value::Null) => changes.push(DiffChange::removed(String::new(), old)),
            (old, new) => compare(&mut String::new(), old, new, &mut changes),
        }
        Diff { changes }
    }

    /// The changes, in path order.
    ///
    /// ```
    /// use memo_runtime::Diff;
    /// use serde_json::json;
    ///
    /// let diff = Diff::between(&json!({"b": 1, "a": 1}), &json!({"b": 2, "a": 2}));
    /// let paths: Vec<&str> = diff.iter().map(|change| change.path()).collect();
    /// assert_eq!(paths, ["/a", "/b"]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, DiffChange> {
        self.changes.iter()
    }

    /// How many fields changed.
    ///
    /// ```
    /// use memo_runtime::Diff;
    /// use serde_json::json;
    ///
    /// assert_eq!(Diff::between(&json!({"a": {"b": 1, "c": 1}}), &json!({"a": {"b": 2, "c": 2}})).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether nothing changed.
    ///
    /// ```
    /// use memo_runtime::Diff;
    /// use serde_json::json;
    ///
    /// assert!(Diff::between(&json!({"a": 1}), &json!({"a": 1})).is_empty());
    /// assert!(Diff::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diff {
    type Item = &'a DiffChange;
    type IntoIter = std::slice::Iter<'a, DiffChange>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl DiffChange {
    fn added(path: String, new: &Value) -> Self {
        DiffChange {
            op: DiffOp::Add,
            path,
            old: None,
            new: Some(new.clone()),
        }
    }

    fn removed(path: String, old: &Value) -> Self {
        DiffChange {
            op: DiffOp::Remove,
            path,
            old: Some(old.clone()),
            new: None,
        }
    }
}

/// Compares two present values at `path`, appending their changes; `path` is restored on return,
/// so one buffer serves the whole walk.
fn compare(path: &mut String, old: &Value, new: &Value, changes: &mut Vec<DiffChange>) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => compare_objects(path, old, new, changes),
        (old, new) if old != new => changes.push(DiffChange {
            op: DiffOp::Change,
            path: path.clone(),
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
        _ => {}
    }
}

fn compare_objects(
    path: &mut String,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    changes: &mut Vec<DiffChange>,
) {
    // Sorted here rather than relying on the map's order, which serde_json's `preserve_order`
    // feature (enabled by any crate in the build) turns into insertion order.
    let mut keys: Vec<&str> = old.keys().chain(new.keys()).map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let len = path.len();
        pointer::push_token(path, key);
        match (old.get(key), new.get(key)) {
            (Some(old), Some(new)) => compare(path, old, new, changes),
            (Some(old), None) => changes.push(DiffChange::removed(path.clone(), old)),
            (None, Some(new)) => changes.push(DiffChange::added(path.clone(), new)),
            (None, None) => {}
        }
        path.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(old: Value, new: Value) -> Vec<DiffChange> {
        Diff::between(&old, &new).changes
    }

    fn change(op: DiffOp, path: &str, old: Option<Value>, new: Option<Value>) -> DiffChange {
        DiffChange {
            op,
            path: path.to_owned(),
            old,
            new,
        }
    }

    #[test]
    fn nested_objects_are_compared_key_by_key() {
        let old = json!({"spec": {"size": 1, "nested": {"keep": 1, "drop": 2, "deeper": {"x": 1}}}, "same": true});
        let new = json!({"spec": {"size": 1, "nested": {"keep": 1, "add": 3, "deeper": {"x": 2}}}, "same": true});
        assert_eq!(
            changes(old, new),
            [
                change(DiffOp::Add, "/spec/nested/add", None, Some(json!(3))),
                change(DiffOp::Change, "/spec/nested/deeper/x", Some(json!(1)), Some(json!(2))),
                change(DiffOp::Remove, "/spec/nested/drop", Some(json!(2)), None),
            ]
        );
    }

    #[test]
    fn arrays_and_scalars_are_whole_values() {
        assert_eq!(
            changes(json!({"a": [1, {"b": 1}]}), json!({"a": [1, {"b": 2}]})),
            [change(
                DiffOp::Change,
                "/a",
                Some(json!([1, {"b": 1}])),
                Some(json!([1, {"b": 2}]))
            )]
        );
        assert_eq!(
            changes(json!({"a": {"b": 1}}), json!({"a": "flat"})),
            [change(DiffOp::Change, "/a", Some(json!({"b": 1})), Some(json!("flat")))]
        );
        assert_eq!(
            changes(json!({"a": 1}), json!({"a": 1.0})),
            [change(DiffOp::Change, "/a", Some(json!(1)), Some(json!(1.0)))]
        );
    }

    #[test]
    fn null_inside_is_a_value_and_at_the_top_is_absence() {
        assert_eq!(
            changes(json!({"a": 1}), json!({"a": null})),
            [change(DiffOp::Change, "/a", Some(json!(1)), Some(Value::Null))]
        );
        assert_eq!(
            changes(json!({"a": null}), json!({})),
            [change(DiffOp::Remove, "/a", Some(Value::Null), None)]
        );
        assert_eq!(
            changes(Value::Null, json!({"a": 1})),
            [change(DiffOp::Add, "", None, Some(json!({"a": 1})))]
        );
        assert_eq!(
            changes(json!(2), Value::Null),
            [change(DiffOp::Remove, "", Some(json!(2)), None)]
        );
        assert_eq!(
            changes(json!(2), json!(3)),
            [change(DiffOp::Change, "", Some(json!(2)), Some(json!(3)))]
        );
        assert!(changes(Value::Null, Value::Null).is_empty());
        assert!(changes(json!({}), json!({})).is_empty());
    }

    #[test]
    fn keys_are_escaped_in_paths() {
        let old = json!({"metadata": {"annotations": {"example.com/key": "a", "til~de": "x", "": 0}}});
        let new = json!({"metadata": {"annotations": {"example.com/key": "b", "til~de": "y", "": 1}}});
        let paths: Vec<String> = Diff::between(&old, &new).iter().map(|c| c.path().to_owned()).collect();
        assert_eq!(
            paths,
            [
                "/metadata/annotations/",
                "/metadata/annotations/example.com~1key",
                "/metadata/annotations/til~0de"
            ]
        );
    }

    #[test]
    fn changes_display_for_logs() {
        let diff = Diff::between(&json!({"a": 1, "b": "x"}), &json!({"a": 2, "c": [1]}));
        let shown: Vec<String> = (&diff).into_iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["change /a: 1 -> 2", r#"remove /b (was "x")"#, "add /c: [1]"]);
    }
}
