//! An object's essence: what its `update` handlers react to, and what their `old`, `new` and
//! `diff` show.

use serde_json::{Map, Value};

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
// Wired into the engine by issue 19's next step.
#[allow(dead_code)]
pub(crate) fn essence(body: &Value, excluded_annotation_prefix: &str) -> Value {
    let Value::Object(body) = body else {
        return body.clone();
    };
    let mut essence = Map::new();
    for (key, value) in body {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
            essence.insert(key.clone(), value.clone());
        }
    }
    let mut metadata = Map::new();
    if let Some(labels) = body
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        && !labels.is_empty()
    {
        metadata.insert("labels".to_owned(), Value::Object(labels.clone()));
    }
    if let Some(annotations) = body
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        let kept: Map<String, Value> = annotations
            .iter()
            .filter(|(key, _)| {
                key.as_str() != LAST_APPLIED
                    && (excluded_annotation_prefix.is_empty() || !key.starts_with(excluded_annotation_prefix))
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !kept.is_empty() {
            metadata.insert("annotations".to_owned(), Value::Object(kept));
        }
    }
    if !metadata.is_empty() {
        essence.insert("metadata".to_owned(), Value::Object(metadata));
    }
    Value::Object(essence)
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
    fn an_empty_prefix_excludes_no_annotation() {
        let body = json!({"metadata": {"annotations": {"memo.dev/x": "1"}}});
        assert_eq!(
            essence(&body, ""),
            json!({"metadata": {"annotations": {"memo.dev/x": "1"}}})
        );
    }
}
