//! The changes a handler asks for: a JSON merge patch (RFC 7386) of its object.

use crate::api::pointer;
use serde::Serialize;
use serde_json::{Map, Value};

/// A JSON merge patch (RFC 7386) of the handler's object: a handler's `patch`.
///
/// In a merge patch, an object is merged into the object's value key by key, `null` removes a
/// key, and anything else (a string, a number, an array) replaces the value whole: an array
/// cannot be changed element by element. The patches of one event's handlers are combined in
/// order ([`merge_patch`](Self::merge_patch)) and sent once, the `status` part through the
/// status subresource ([`split_status`](Self::split_status)).
///
/// ```
/// use memo_runtime::Patch;
/// use serde_json::json;
///
/// let mut patch = Patch::new();
/// patch.merge(json!({"status": {"phase": "Created", "size": 3}}));
/// patch.set("/status/phase", "Updated");
/// patch.remove("/metadata/labels/legacy");
/// assert_eq!(
///     patch.as_value(),
///     &json!({"status": {"phase": "Updated", "size": 3}, "metadata": {"labels": {"legacy": null}}})
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Patch {
    /// Always an object: a merge patch whose top is not an object would replace the whole
    /// Kubernetes object, which no API server accepts.
    value: Value,
}

impl Default for Patch {
    fn default() -> Self {
        Patch {
            value: Value::Object(Map::new()),
        }
    }
}

impl Patch {
    /// An empty patch: it changes nothing.
    ///
    /// ```
    /// use memo_runtime::Patch;
    ///
    /// assert!(Patch::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Patch::default()
    }

    fn map(&mut self) -> &mut Map<String, Value> {
        object_in(&mut self.value)
    }

    /// Merges a merge patch into this one, as if this one were applied and then `value`:
    /// objects merge key by key, anything else (`null` included) replaces what this patch had
    /// at that place.
    ///
    /// `value` must be an object; anything else would replace the whole Kubernetes object, and
    /// is ignored with an error in the log.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut patch = Patch::new();
    /// patch.merge(json!({"spec": {"size": 1, "tier": "web"}}));
    /// patch.merge(json!({"spec": {"size": 2, "tier": null}}));
    /// assert_eq!(patch.as_value(), &json!({"spec": {"size": 2, "tier": null}}));
    /// ```
    pub fn merge(&mut self, value: impl Into<Value>) {
        match value.into() {
            Value::Object(other) => merge_into(self.map(), other),
            other => tracing::error!(
                patch = %other,
                "a patch merged into a handler's patch is not an object, and is ignored: it would replace \
                 the whole object; merge an object such as {{\"status\": {{…}}}}"
            ),
        }
    }

    /// Combines another handler's patch into this one, after it: where both set a field, the
    /// other's value wins, as if the two were applied one after the other.
    ///
    /// Merge patches compose exactly but in one case: where the first patch removes or sets a
    /// field to a non-object and the second merges an object into it, the combined patch merges
    /// that object into the field's current value instead of replacing it.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let (mut first, mut second) = (Patch::new(), Patch::new());
    /// first.set("/status/phase", "Created");
    /// first.set("/status/size", 1);
    /// second.set("/status/phase", "Ready");
    /// first.merge_patch(second);
    /// assert_eq!(first.as_value(), &json!({"status": {"phase": "Ready", "size": 1}}));
    /// ```
    pub fn merge_patch(&mut self, other: Patch) {
        self.merge(other.value);
    }

    /// Sets the field at a JSON Pointer (RFC 6901), creating the objects on the way:
    /// `"/status/phase"`, or `"/metadata/labels/example.com~1tier"` for the label
    /// `example.com/tier` (`~1` stands for `/` in a key, `~0` for `~`).
    ///
    /// Every token of the pointer is an object key: a merge patch cannot reach into an array, so
    /// `/spec/items/0` sets the key `"0"` of an object `items`. An object `value` is merged into
    /// the field's current value when the patch is applied, as merge patches do.
    ///
    /// A malformed pointer (without its leading `/`, or with a `~` followed by neither `0` nor
    /// `1`), and `""` (the whole object), change nothing: the mistake is logged as an error
    /// naming the pointer, and the handler goes on.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut patch = Patch::new();
    /// patch.set("/status/phase", "Updated");
    /// patch.set("/metadata/annotations/example.com~1note", "checked");
    /// assert_eq!(
    ///     patch.as_value(),
    ///     &json!({
    ///         "status": {"phase": "Updated"},
    ///         "metadata": {"annotations": {"example.com/note": "checked"}},
    ///     })
    /// );
    ///
    /// patch.set("status/phase", "Ignored"); // no leading `/`: logged, nothing set
    /// assert_eq!(patch.as_value()["status"]["phase"], "Updated");
    /// ```
    pub fn set(&mut self, pointer: &str, value: impl Into<Value>) {
        self.put(pointer, value.into());
    }

    /// Removes the field at a JSON Pointer: sets it to `null`, which a merge patch reads as
    /// "remove this key". Pointers are read as [`set`](Self::set) reads them.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut patch = Patch::new();
    /// patch.remove("/metadata/labels/legacy");
    /// assert_eq!(patch.as_value(), &json!({"metadata": {"labels": {"legacy": null}}}));
    /// ```
    pub fn remove(&mut self, pointer: &str) {
        self.put(pointer, Value::Null);
    }

    fn put(&mut self, pointer: &str, value: Value) {
        let tokens = match pointer::tokens(pointer) {
            Ok(tokens) => tokens,
            Err(reason) => {
                tracing::error!(pointer, "a patch was not written at a malformed JSON Pointer: {reason}");
                return;
            }
        };
        let Some((last, parents)) = tokens.split_last() else {
            tracing::error!(
                pointer,
                "a patch was not written at the empty JSON Pointer, the whole object: merge an object instead"
            );
            return;
        };
        let mut map = self.map();
        for key in parents {
            let entry = map.entry(key.as_str()).or_insert_with(|| Value::Object(Map::new()));
            // A field this patch set to a value (or removed) before now gets a field of its own.
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            map = object_in(entry);
        }
        map.insert(last.clone(), value);
    }

    /// Whether the patch changes nothing.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut patch = Patch::new();
    /// patch.merge(json!({}));
    /// assert!(patch.is_empty());
    /// patch.remove("/spec/old");
    /// assert!(!patch.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.value.as_object().is_none_or(Map::is_empty)
    }

    /// The patch as JSON: always an object.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// assert_eq!(Patch::new().as_value(), &json!({}));
    /// ```
    pub fn as_value(&self) -> &Value {
        &self.value
    }

    /// The patch as JSON, taken out.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut patch = Patch::new();
    /// patch.set("/spec/size", 3);
    /// assert_eq!(patch.into_value(), json!({"spec": {"size": 3}}));
    /// ```
    pub fn into_value(self) -> Value {
        self.value
    }

    /// The patch in two, for the object and for its status subresource (which is the only way
    /// to write `status` when the kind has one): the patch without `status` (`None` if nothing
    /// else is left), and `{"status": …}` (`None` if the patch does not touch `status`).
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut patch = Patch::new();
    /// patch.set("/status/phase", "Ready");
    /// patch.set("/metadata/labels/tier", "web");
    /// let (main, status) = patch.split_status();
    /// assert_eq!(main, Some(json!({"metadata": {"labels": {"tier": "web"}}})));
    /// assert_eq!(status, Some(json!({"status": {"phase": "Ready"}})));
    ///
    /// let mut status_only = Patch::new();
    /// status_only.set("/status/phase", "Ready");
    /// assert_eq!(status_only.split_status().0, None);
    /// ```
    pub fn split_status(self) -> (Option<Value>, Option<Value>) {
        let mut map = match self.value {
            Value::Object(map) => map,
            _ => return (None, None),
        };
        let status = map
            .remove("status")
            .map(|status| Value::Object(Map::from_iter([("status".to_owned(), status)])));
        let main = (!map.is_empty()).then_some(Value::Object(map));
        (main, status)
    }

    /// Applies the patch to a value as RFC 7386 says: what the object becomes once the API
    /// server has applied it.
    ///
    /// ```
    /// use memo_runtime::Patch;
    /// use serde_json::json;
    ///
    /// let mut object = json!({"spec": {"size": 1, "tier": "web"}, "status": {"phase": "Created"}});
    /// let mut patch = Patch::new();
    /// patch.set("/spec/size", 3);
    /// patch.remove("/spec/tier");
    /// patch.set("/status/phase", "Updated");
    /// patch.apply_to(&mut object);
    /// assert_eq!(object, json!({"spec": {"size": 3}, "status": {"phase": "Updated"}}));
    /// ```
    pub fn apply_to(&self, target: &mut Value) {
        apply(target, &self.value);
    }
}

impl From<Patch> for Value {
    fn from(patch: Patch) -> Value {
        patch.value
    }
}

/// The map of a value its caller knows is an object (a patch's top, or a value it just made
/// one).
fn object_in(value: &mut Value) -> &mut Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the value is an object"),
    }
}

/// Composes two merge patches: `patch` applied after `target`.
fn merge_into(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(inner)) => merge_into(existing, inner),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

/// RFC 7386, section 2: `MergePatch(Target, Patch)`.
fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = object_in(target);
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            apply(target.entry(key.as_str()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_follows_the_examples_of_rfc_7386() {
        // Appendix A, every row: original, patch, result.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (mut target, patch, result) in cases {
            apply(&mut target, &patch);
            assert_eq!(target, result, "{patch}");
        }
    }

    #[test]
    fn apply_to_uses_the_patch_as_built() {
        // Section 3's example, built with the patch's own methods.
        let mut target = json!({
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged",
        });
        let mut patch = Patch::new();
        patch.set("/title", "Hello!");
        patch.set("/phoneNumber", "+01-123-456-7890");
        patch.remove("/author/familyName");
        patch.set("/tags", json!(["example"]));
        patch.apply_to(&mut target);
        assert_eq!(
            target,
            json!({
                "title": "Hello!",
                "author": {"givenName": "John"},
                "tags": ["example"],
                "content": "This will be unchanged",
                "phoneNumber": "+01-123-456-7890",
            })
        );
    }

    #[test]
    fn combined_patches_apply_as_the_sequence_does() {
        let original = json!({"spec": {"a": 1, "b": {"x": 1, "y": 2}, "c": [1]}, "status": {"n": 0}});
        let patches = [
            json!({"spec": {"a": 2, "b": {"x": null}}}),
            json!({"spec": {"b": {"z": 3}, "c": [2, 3]}, "status": {"n": 1}}),
            json!({"spec": {"a": null}, "status": {"n": 2, "done": true}}),
        ];
        let mut sequential = original.clone();
        let mut combined = Patch::new();
        for value in patches {
            apply(&mut sequential, &value);
            let mut patch = Patch::new();
            patch.merge(value);
            combined.merge_patch(patch);
        }
        let mut at_once = original;
        combined.apply_to(&mut at_once);
        assert_eq!(at_once, sequential);
        assert_eq!(
            combined.as_value(),
            &json!({"spec": {"a": null, "b": {"x": null, "z": 3}, "c": [2, 3]}, "status": {"n": 2, "done": true}})
        );
    }

    #[test]
    fn set_makes_room_through_values_set_before() {
        let mut patch = Patch::new();
        patch.remove("/spec/a");
        patch.set("/spec/a/b", 1);
        patch.set("/spec/c", "x");
        patch.set("/spec/c", json!({"d": true}));
        assert_eq!(patch.as_value(), &json!({"spec": {"a": {"b": 1}, "c": {"d": true}}}));
        patch.set("/", "empty key");
        assert_eq!(patch.as_value()[""], "empty key");
    }

    #[test]
    fn malformed_pointers_and_non_objects_change_nothing() {
        let mut patch = Patch::new();
        patch.set("status/phase", "x");
        patch.set("/a~2b", "x");
        patch.set("", json!({"a": 1}));
        patch.remove("/~");
        patch.merge(json!("a string"));
        patch.merge(json!(null));
        assert!(patch.is_empty());
        assert_eq!(patch, Patch::default());
    }

    #[test]
    fn split_status_keeps_a_removed_status() {
        let mut patch = Patch::new();
        patch.remove("/status");
        assert_eq!(patch.clone().split_status(), (None, Some(json!({"status": null}))));
        assert_eq!(Patch::new().split_status(), (None, None));
        patch.set("/spec/size", 1);
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            r#"{"spec":{"size":1},"status":null}"#
        );
    }
}
