//! An object's labels and annotations, read-only views into its body.

use serde_json::{Map, Value};
use std::fmt;

/// The string entries of one map of the body; entries whose value is not a string (which
/// Kubernetes never sends) are skipped, so that every method agrees on what the map holds.
#[derive(Clone, Copy, Default)]
struct Strings<'a> {
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Strings<'a> {
    fn at(body: &'a Value, field: &str) -> Self {
        Strings {
            map: body
                .get("metadata")
                .and_then(|metadata| metadata.get(field))
                .and_then(Value::as_object),
        }
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.map?.get(key)?.as_str()
    }

    fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.map
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
    }
}

/// An object's labels (`metadata.labels`), borrowed from its body: a handler's `labels`.
///
/// Building one only looks the map up; values are read where they are. An object without labels
/// has an empty map.
///
/// ```
/// use memo_runtime::Labels;
/// use serde_json::json;
///
/// let body = json!({"metadata": {"labels": {"tier": "web", "env": "prod"}}});
/// let labels = Labels::of(&body);
/// assert_eq!(labels.get("tier"), Some("web"));
/// assert_eq!(labels.get("missing"), None);
/// assert_eq!(labels.iter().collect::<Vec<_>>(), [("env", "prod"), ("tier", "web")]);
/// ```
#[derive(Clone, Copy, Default)]
pub struct Labels<'a>(Strings<'a>);

impl<'a> Labels<'a> {
    /// The labels of an object's body.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// assert!(Labels::of(&json!({"metadata": {"name": "a"}})).is_empty());
    /// ```
    pub fn of(body: &'a Value) -> Self {
        Labels(Strings::at(body, "labels"))
    }

    /// Labels from a map of their own, such as `metadata.labels` already looked up.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// let map = json!({"tier": "web"});
    /// assert_eq!(Labels::from_map(map.as_object().unwrap()).len(), 1);
    /// ```
    pub fn from_map(map: &'a Map<String, Value>) -> Self {
        Labels(Strings { map: Some(map) })
    }

    /// The value of a label, if the object has it.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}}});
    /// assert_eq!(Labels::of(&body).get("app.kubernetes.io/name"), Some("web"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.get(key)
    }

    /// Whether the object has a label, whatever its value.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"labels": {"canary": ""}}});
    /// assert!(Labels::of(&body).contains_key("canary"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }

    /// The labels as `(key, value)` pairs, in key order.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"labels": {"b": "2", "a": "1"}}});
    /// let keys: Vec<&str> = Labels::of(&body).iter().map(|(key, _)| key).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.0.iter()
    }

    /// How many labels the object has.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// assert_eq!(Labels::of(&json!({"metadata": {"labels": {"a": "1", "b": "2"}}})).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.0.iter().count()
    }

    /// Whether the object has no labels.
    ///
    /// ```
    /// use memo_runtime::Labels;
    /// use serde_json::json;
    ///
    /// assert!(Labels::of(&json!({})).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.iter().next().is_none()
    }
}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// An object's annotations (`metadata.annotations`), borrowed from its body: a handler's
/// `annotations`.
///
/// Building one only looks the map up; values are read where they are. An object without
/// annotations has an empty map.
///
/// ```
/// use memo_runtime::Annotations;
/// use serde_json::json;
///
/// let body = json!({"metadata": {"annotations": {"example.com/owner": "payments"}}});
/// let annotations = Annotations::of(&body);
/// assert_eq!(annotations.get("example.com/owner"), Some("payments"));
/// assert_eq!(annotations.len(), 1);
/// ```
#[derive(Clone, Copy, Default)]
pub struct Annotations<'a>(Strings<'a>);

impl<'a> Annotations<'a> {
    /// The annotations of an object's body.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// assert!(Annotations::of(&json!({"metadata": {"name": "a"}})).is_empty());
    /// ```
    pub fn of(body: &'a Value) -> Self {
        Annotations(Strings::at(body, "annotations"))
    }

    /// Annotations from a map of their own, such as `metadata.annotations` already looked up.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// let map = json!({"note": "hello"});
    /// assert_eq!(Annotations::from_map(map.as_object().unwrap()).get("note"), Some("hello"));
    /// ```
    pub fn from_map(map: &'a Map<String, Value>) -> Self {
        Annotations(Strings { map: Some(map) })
    }

    /// The value of an annotation, if the object has it.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"annotations": {"note": "hello"}}});
    /// assert_eq!(Annotations::of(&body).get("note"), Some("hello"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.get(key)
    }

    /// Whether the object has an annotation, whatever its value.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"annotations": {"note": ""}}});
    /// assert!(Annotations::of(&body).contains_key("note"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }

    /// The annotations as `(key, value)` pairs, in key order.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// let body = json!({"metadata": {"annotations": {"b": "2", "a": "1"}}});
    /// assert_eq!(Annotations::of(&body).iter().next(), Some(("a", "1")));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.0.iter()
    }

    /// How many annotations the object has.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// assert_eq!(Annotations::of(&json!({"metadata": {"annotations": {"a": "1"}}})).len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.0.iter().count()
    }

    /// Whether the object has no annotations.
    ///
    /// ```
    /// use memo_runtime::Annotations;
    /// use serde_json::json;
    ///
    /// assert!(Annotations::of(&json!({})).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.iter().next().is_none()
    }
}

impl fmt::Debug for Annotations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_are_read_from_the_body_where_they_are() {
        let body = json!({"metadata": {
            "labels": {"tier": "web", "odd": 3},
            "annotations": {"example.com/key": "v"},
        }});
        let labels = Labels::of(&body);
        assert_eq!(labels.get("tier"), Some("web"));
        assert_eq!(labels.get("odd"), None, "a value that is not a string is not a label");
        assert!(!labels.contains_key("odd"));
        assert_eq!(labels.len(), 1);
        assert_eq!(format!("{labels:?}"), r#"{"tier": "web"}"#);
        let annotations = Annotations::of(&body);
        assert_eq!(annotations.iter().collect::<Vec<_>>(), [("example.com/key", "v")]);
        assert!(Labels::of(&json!({"metadata": {"labels": null}})).is_empty());
        assert!(Annotations::of(&json!("not an object")).is_empty());
        assert!(Labels::default().is_empty());
    }
}
