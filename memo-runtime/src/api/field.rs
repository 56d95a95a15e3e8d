//! A field of an object named by a dotted path, as `field = "spec.replicas"` names it.

use serde_json::Value;

static ABSENT: Value = Value::Null;

/// The value at a dotted path of object keys (`"spec.replicas"`), or `null` when a key on the
/// way is missing or a value on the way is not an object. Keys that contain a `.` cannot be
/// named, and array elements are not reached into (`"spec.ports.0"` is `null`), as in kopf's
/// string paths. `""` names the whole body.
pub(crate) fn field_value<'v>(body: &'v Value, path: &str) -> &'v Value {
    if path.is_empty() {
        return body;
    }
    path.split('.')
        .try_fold(body, |value, key| value.as_object()?.get(key))
        .unwrap_or(&ABSENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_reach_through_objects_only() {
        let body = json!({"spec": {"replicas": 3, "ports": [80], "empty": null, "deep": {"er": {"x": "y"}}}});
        assert_eq!(field_value(&body, "spec.replicas"), &json!(3));
        assert_eq!(field_value(&body, "spec.deep.er.x"), &json!("y"));
        assert_eq!(field_value(&body, "spec.deep"), &json!({"er": {"x": "y"}}));
        assert_eq!(field_value(&body, "spec.ports"), &json!([80]));
        assert_eq!(field_value(&body, ""), &body);
        for absent in [
            "spec.missing",
            "spec.replicas.x",
            "spec.ports.0",
            "spec.empty.x",
            "status",
            "spec..replicas",
        ] {
            assert_eq!(field_value(&body, absent), &Value::Null, "{absent}");
        }
    }
}
