//! An object's essence: what its `update` handlers react to, and what their `old`, `new` and
//! `diff` show.

use serde_json::{Map, Value};

/// The prefix of the annotations memo writes on objects itself: they are left out of the
/// essence, so that memo's own bookkeeping on an object never runs its `update` handlers.
/// (A setting of its own once the operator writes such annotations.)
pub(crate) const MEMO_ANNOTATIONS: &str = "memo.dev/";

/// Written by `kubectl apply` on every apply, holding the whole applied object: a change to it
/// comes with the change it records, which the diff shows where it happened.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The object as its author wrote it: without `status` (what operators write), `metadata`
/// reduced to `labels` and `annotations`, and without annotations whose key starts with
/// `excluded_annotation_prefix` (the ones the operator writes itself; `""` excludes none) or
/// `kubectl.kubernetes.io/last-applied-configuration`.
///
/// `apiVersion` and `kind` are dropped as kopf drops them: they never change for one object, and
/// the same object read through another version of its API must not look changed. Other
/// top-level fields (`spec`, `data`, …) are kept. Empty `labels` and `annotations` and an empty
/// `metadata` are dropped, so that `labels: {}` and no labels are the same essence.
pub(crate) fn essence(body: &Value, excluded_annotation_prefix: &str) -> Value {
    let Value::Object(fields) = body else {
        return body.clone();
    };
    let mut essence = Map::new();
    for (key, value) in fields {
        if authored(key) {
            essence.insert(key.clone(), value.clone());
        }
    }
    let mut metadata = Map::new();
    if let Some(labels) = labels(body) {
        metadata.insert("labels".to_owned(), Value::Object(labels.clone()));
    }
    let kept: Map<String, Value> = annotations(body, excluded_annotation_prefix)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !kept.is_empty() {
        metadata.insert("annotations".to_owned(), Value::Object(kept));
    }
    if !metadata.is_empty() {
        essence.insert("metadata".to_owned(), Value::Object(metadata));
    }
    Value::Object(essence)
}

/// Whether two objects have the same [`essence`], without making either: most `MODIFIED` events
/// of a busy resource change its status only, and this answers them without allocating.
pub(crate) fn same_essence(old: &Value, new: &Value, excluded_annotation_prefix: &str) -> bool {
    let (Value::Object(old_map), Value::Object(new_map)) = (old, new) else {
        return old == new;
    };
    let old_fields = old_map.iter().filter(|(key, _)| authored(key));
    if old_fields.clone().count() != new_map.keys().filter(|key| authored(key)).count()
        || old_fields
            .into_iter()
            .any(|(key, value)| new_map.get(key) != Some(value))
    {
        return false;
    }
    if labels(old) != labels(new) {
        return false;
    }
    let prefix = excluded_annotation_prefix;
    let new_annotations = new.get("metadata").and_then(|m| m.get("annotations"));
    annotations(old, prefix).count() == annotations(new, prefix).count()
        && annotations(old, prefix).all(|(key, value)| new_annotations.and_then(|map| map.get(key)) == Some(value))
}

/// Whether a top-level field is kept whole in the essence (`metadata` is kept in part).
fn authored(key: &str) -> bool {
    !matches!(key, "apiVersion" | "kind" | "metadata" | "status")
}

/// The labels the essence keeps: none when the map is empty.
fn labels(body: &Value) -> Option<&Map<String, Value>> {
    body.get("metadata")
        .and_then(|metadata| metadata.get("labels"))
        .and_then(Value::as_object)
        .filter(|labels| !labels.is_empty())
}

/// The annotations the essence keeps.
fn annotations<'v>(body: &'v Value, excluded_prefix: &'v str) -> impl Iterator<Item = (&'v String, &'v Value)> + Clone {
    body.get("metadata")
        .and_then(|metadata| metadata.get("annotations"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(move |(key, _)| {
            key.as_str() != LAST_APPLIED && (excluded_prefix.is_empty() || !key.starts_with(excluded_prefix))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(spec_size: u64, status: &str, resource_version: &str) -> Value {
        json!({
            "apiVersion": "example.com/v1",
            "kind": "KopfExample",
            "metadata": {
                "name": "a",
                "namespace": "default",
                "uid": "1234",
                "resourceVersion": resource_version,
                "generation": 3,
                "managedFields": [{"manager": "kubectl"}],
                "labels": {"tier": "web"},
                "annotations": {
                    "example.com/note": "kept",
                    "memo.dev/last-handled": "{…}",
                    LAST_APPLIED: "{…}",
                },
            },
            "spec": {"size": spec_size},
            "data": {"key": "value"},
            "status": {"phase": status},
        })
    }

    #[test]
    fn the_essence_keeps_what_the_author_wrote() {
        assert_eq!(
            essence(&object(1, "Created", "10"), "memo.dev/"),
            json!({
                "metadata": {"labels": {"tier": "web"}, "annotations": {"example.com/note": "kept"}},
                "spec": {"size": 1},
                "data": {"key": "value"},
            })
        );
    }

    #[test]
    fn status_and_bookkeeping_do_not_change_it() {
        let before = essence(&object(1, "Created", "10"), "memo.dev/");
        assert_eq!(essence(&object(1, "Updated", "11"), "memo.dev/"), before);
        assert_ne!(essence(&object(2, "Created", "11"), "memo.dev/"), before);
    }

    #[test]
    fn empty_maps_are_no_maps() {
        let bare = json!({"spec": {}});
        assert_eq!(
            essence(
                &json!({"metadata": {"labels": {}, "annotations": {}}, "spec": {}}),
                "memo.dev/"
            ),
            bare
        );
        assert_eq!(
            essence(
                &json!({"metadata": {"annotations": {"memo.dev/x": "1"}}, "spec": {}}),
                "memo.dev/"
            ),
            bare
        );
        assert_eq!(
            essence(&json!({"metadata": {"name": "a"}, "spec": {}}), "memo.dev/"),
            bare
        );
    }

    #[test]
    fn comparing_agrees_with_making_both() {
        let bodies = [
            object(1, "Created", "10"),
            object(1, "Updated", "11"),
            object(2, "Created", "11"),
            json!({"metadata": {"labels": {}}, "spec": {}}),
            json!({"spec": {}}),
            json!({"spec": {}, "data": 1}),
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {}}),
            json!({"metadata": {"labels": {"a": "2"}}, "spec": {}}),
            json!({"metadata": {"annotations": {"memo.dev/x": "1", "b": "1"}}, "spec": {}}),
            json!({"metadata": {"annotations": {"b": "1"}}, "spec": {}}),
            json!({"metadata": {"annotations": {"b": "2"}}, "spec": {}}),
            json!({"metadata": {"annotations": {"c": "1"}}, "spec": {}}),
            json!("not an object"),
        ];
        for old in &bodies {
            for new in &bodies {
                assert_eq!(
                    same_essence(old, new, MEMO_ANNOTATIONS),
                    essence(old, MEMO_ANNOTATIONS) == essence(new, MEMO_ANNOTATIONS),
                    "{old} vs {new}"
                );
            }
        }
    }

    #[test]
    fn an_empty_prefix_excludes_no_annotation() {
        let body = json!({"metadata": {"annotations": {"memo.dev/x": "1"}}});
        assert_eq!(
            essence(&body, ""),
            json!({"metadata": {"annotations": {"memo.dev/x": "1"}}})
        );
    }
}
