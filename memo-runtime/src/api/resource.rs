//! A resource's identity: read from its object once, when its first event is admitted, and
//! carried with the resource from then on.
//!
//! A resource is its API group, kind, namespace and name; the uid tells incarnations apart. Kind
//! and group are the same for every resource of a kind, so they live in the kind's plan; what is
//! particular to one resource lives in its [`ResourceKey`], which is also its key in the
//! dispatcher's map: one allocation per resource for both jobs.

use serde_json::Value;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What one event's object says about who it is, borrowed from the object. Read on every
/// event, so it reads only what routing needs; the namespace only when it is needed.
pub(crate) struct Admitted<'a> {
    pub(crate) kind: &'a str,
    pub(crate) api_version: &'a str,
    pub(crate) name: &'a str,
    pub(crate) uid: Option<&'a str>,
    metadata: &'a Value,
}

/// Why an object cannot be admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    Kind,
    Name,
    KindAndName,
    /// An identity field that is there with the wrong JSON type (`"uid": {"a": 1}`): handled as
    /// absent, it would merge or split resources without a word.
    WrongType {
        field: &'static str,
        found: &'static str,
        expected: &'static str,
    },
    /// `metadata.name` is the empty string.
    EmptyName,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Kind => f.write_str("the object has no `kind`"),
            Missing::Name => f.write_str("the object has no `metadata.name`"),
            Missing::KindAndName => f.write_str("the object has no `kind` and `metadata.name`"),
            Missing::WrongType { field, found, expected } => {
                write!(f, "the object's `{field}` is {found}, not {expected}")
            }
            Missing::EmptyName => f.write_str("the object's `metadata.name` is empty"),
        }
    }
}

/// What kind of JSON value `value` is, with its article, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The string at `field` of `object`: `Ok(None)` when absent or null, an error naming `path`
/// when it has another type.
#[inline]
fn optional_str<'a>(object: &'a Value, field: &str, path: &'static str) -> Result<Option<&'a str>, Missing> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(Missing::WrongType {
            field: path,
            found: json_type(other),
            expected: "a string",
        }),
    }
}

impl<'a> Admitted<'a> {
    /// Reads the identity fields of an object; one whose identity fields have the wrong type is
    /// refused, naming the field.
    pub(crate) fn read(object: &'a Value) -> Result<Self, Missing> {
        let metadata = match object.get("metadata") {
            None | Some(Value::Null) => &Value::Null,
            Some(metadata @ Value::Object(_)) => metadata,
            Some(other) => {
                return Err(Missing::WrongType {
                    field: "metadata",
                    found: json_type(other),
                    expected: "an object",
                });
            }
        };
        let kind = optional_str(object, "kind", "kind")?;
        let name = optional_str(metadata, "name", "metadata.name")?;
        let (kind, name) = match (kind, name) {
            (Some(_), Some("")) => return Err(Missing::EmptyName),
            (Some(kind), Some(name)) => (kind, name),
            (None, Some(_)) => return Err(Missing::Kind),
            (Some(_), None) => return Err(Missing::Name),
            (None, None) => return Err(Missing::KindAndName),
        };
        let uid = optional_str(metadata, "uid", "metadata.uid")?;
        Ok(Admitted {
            kind,
            api_version: optional_str(object, "apiVersion", "apiVersion")?.unwrap_or_default(),
            name,
            uid: uid.filter(|uid| !uid.is_empty()),
            metadata,
        })
    }

    pub(crate) fn namespace(&self) -> Option<&'a str> {
        self.metadata.get("namespace").and_then(Value::as_str)
    }

    /// The namespace, checked: read once, when the resource is first admitted (it is part of
    /// its identity from then on), so not on every event.
    pub(crate) fn checked_namespace(&self) -> Result<Option<&'a str>, Missing> {
        optional_str(self.metadata, "namespace", "metadata.namespace")
    }

    /// The text the resource is found by: its uid, or without one its group, kind, namespace and
    /// name (so that a `ConfigMap d/foo` and a `Secret d/foo` stay two resources).
    pub(crate) fn lookup(&self, buffer: &'a mut String) -> &'a str {
        match self.uid {
            Some(uid) => uid,
            None => {
                use std::fmt::Write;
                buffer.clear();
                // Writing into a String cannot fail.
                let _ = write!(
                    buffer,
                    "{}.{}/{}/{}",
                    self.kind,
                    api_group(self.api_version),
                    self.namespace().unwrap_or_default(),
                    self.name
                );
                buffer
            }
        }
    }
}

/// The uid of an object, if it has a usable one: a non-empty string at `metadata.uid`. A
/// resource already admitted is found by it alone: its kind, name and namespace cannot change
/// under one uid, so they are not read again from a (often cold) object.
pub(crate) fn known_uid(object: &Value) -> Option<&str> {
    usable_uid(object.get("metadata")?.get("uid"))
}

/// The uid of an object, from its `metadata.uid` field: a non-empty string.
pub(crate) fn usable_uid(field: Option<&Value>) -> Option<&str> {
    field?.as_str().filter(|uid| !uid.is_empty())
}

/// The API group of an `apiVersion`: `"kopf.dev"` for `"kopf.dev/v1"`, `""` for the core `"v1"`.
pub(crate) fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// The part of a resource's identity that is its own, and its key in the dispatcher's map.
///
/// One string, hashed and compared by its lookup part only: `UID \0 NAMESPACE \0 NAME` when the
/// object has a uid (the lookup is the uid, kept once: every byte here is paid per resource), or
/// `KIND.GROUP/NAMESPACE/NAME \0 NAMESPACE \0 NAME \0` (a fourth, empty part: no uid).
#[derive(Clone)]
pub(crate) struct ResourceKey(Arc<str>);

const SEPARATOR: char = '\0';

impl ResourceKey {
    pub(crate) fn new(lookup: &str, admitted: &Admitted<'_>) -> Self {
        let namespace = admitted.namespace().unwrap_or_default();
        let mut text = String::with_capacity(lookup.len() + namespace.len() + admitted.name.len() + 3);
        for (index, part) in [lookup, namespace, admitted.name].into_iter().enumerate() {
            if index > 0 {
                text.push(SEPARATOR);
            }
            // A separator inside a field would shift the others; Kubernetes names cannot hold one.
            text.extend(part.chars().filter(|&c| c != SEPARATOR));
        }
        if admitted.uid.is_none() {
            text.push(SEPARATOR);
        }
        ResourceKey(text.into())
    }

    /// The key as one text, for [`from_text`](ResourceKey::from_text) to read back.
    pub(crate) fn text(&self) -> &str {
        &self.0
    }

    /// A key from its [`text`](ResourceKey::text).
    pub(crate) fn from_text(text: &str) -> Self {
        ResourceKey(text.into())
    }

    fn part(&self, index: usize) -> &str {
        self.0.split(SEPARATOR).nth(index).unwrap_or_default()
    }

    pub(crate) fn lookup(&self) -> &str {
        self.part(0)
    }

    pub(crate) fn namespace(&self) -> Option<&str> {
        Some(self.part(1)).filter(|namespace| !namespace.is_empty())
    }

    pub(crate) fn name(&self) -> &str {
        self.part(2)
    }

    pub(crate) fn uid(&self) -> &str {
        // A fourth part, empty, says the object had no uid; without it the lookup is the uid.
        if self.0.split(SEPARATOR).nth(3).is_some() {
            ""
        } else {
            self.lookup()
        }
    }
}

impl Hash for ResourceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.lookup().hash(state);
    }
}

impl PartialEq for ResourceKey {
    fn eq(&self, other: &Self) -> bool {
        self.lookup() == other.lookup()
    }
}

impl Eq for ResourceKey {}

/// A lookup text, to find a [`ResourceKey`] in a map without building one.
#[derive(Hash)]
pub(crate) struct Lookup<'a>(pub(crate) &'a str);

impl hashbrown::Equivalent<ResourceKey> for Lookup<'_> {
    /// On every event: a prefix comparison, without looking for the separator first.
    fn equivalent(&self, key: &ResourceKey) -> bool {
        let (lookup, text) = (self.0.as_bytes(), key.0.as_bytes());
        text.get(lookup.len()) == Some(&0) && text.starts_with(lookup)
    }
}

/// A resource as handlers and logs see it: the kind's part and the resource's own.
#[derive(Clone, Copy)]
pub(crate) struct Resource<'a> {
    pub(crate) kind: &'a str,
    pub(crate) key: &'a ResourceKey,
}

impl<'a> Resource<'a> {
    pub(crate) fn namespace(&self) -> Option<&'a str> {
        self.key.namespace()
    }

    pub(crate) fn name(&self) -> &'a str {
        self.key.name()
    }

    pub(crate) fn uid(&self) -> &'a str {
        self.key.uid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_of(object: &Value) -> ResourceKey {
        let admitted = Admitted::read(object).unwrap();
        let mut buffer = String::new();
        let lookup = admitted.lookup(&mut buffer).to_owned();
        ResourceKey::new(&lookup, &admitted)
    }

    #[test]
    fn identity_fields_of_the_wrong_type_are_refused_naming_field_and_type() {
        let refused = |object: Value| Admitted::read(&object).err().map(|why| why.to_string());
        let meta = |metadata: Value| json!({"kind": "K", "metadata": metadata});
        assert_eq!(
            refused(meta(json!({"name": "a", "uid": {"a": 1}}))).as_deref(),
            Some("the object's `metadata.uid` is an object, not a string")
        );
        let namespaced = meta(json!({"name": "a", "namespace": ["x"]}));
        let admitted = Admitted::read(&namespaced).unwrap();
        assert_eq!(
            admitted.checked_namespace().unwrap_err().to_string(),
            "the object's `metadata.namespace` is an array, not a string"
        );
        assert_eq!(
            refused(meta(json!({"name": 5}))).as_deref(),
            Some("the object's `metadata.name` is a number, not a string")
        );
        assert_eq!(
            refused(meta(json!({"name": ""}))).as_deref(),
            Some("the object's `metadata.name` is empty")
        );
        assert_eq!(
            refused(json!({"kind": true, "metadata": {"name": "a"}})).as_deref(),
            Some("the object's `kind` is a boolean, not a string")
        );
        assert_eq!(
            refused(json!({"kind": "K", "metadata": "a"})).as_deref(),
            Some("the object's `metadata` is a string, not an object")
        );
        assert_eq!(
            refused(meta(json!({}))).as_deref(),
            Some("the object has no `metadata.name`")
        );
        // Null is absence, as Kubernetes writes it.
        assert_eq!(
            refused(meta(json!({"name": "a", "uid": null, "namespace": null}))),
            None
        );
    }

    #[test]
    fn kinds_without_uids_do_not_collide() {
        let config_map =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foo", "namespace": "d"}});
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foo", "namespace": "d"}});
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "foo", "namespace": "d"}});
        let other_group = json!({"apiVersion": "example.com/v1", "kind": "Deployment", "metadata": {"name": "foo", "namespace": "d"}});
        let keys = [&config_map, &secret, &deployment, &other_group].map(key_of);
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert!(a != b, "{} == {}", a.lookup(), b.lookup());
            }
        }
    }

    #[test]
    fn the_key_carries_namespace_name_and_uid_and_is_found_by_its_lookup() {
        let object = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}});
        let key = key_of(&object);
        assert_eq!(
            (key.lookup(), key.namespace(), key.name(), key.uid()),
            ("u-1", Some("ns"), "p", "u-1")
        );
        let hasher = ahash::RandomState::new();
        assert_eq!(hasher.hash_one(&key), hasher.hash_one(Lookup("u-1")));
        assert!(hashbrown::Equivalent::equivalent(&Lookup("u-1"), &key));
        assert!(!hashbrown::Equivalent::equivalent(&Lookup("u-"), &key));
        assert!(!hashbrown::Equivalent::equivalent(&Lookup("u-12"), &key));

        let cluster_scoped = key_of(&json!({"kind": "Node", "metadata": {"name": "n1"}}));
        assert_eq!(cluster_scoped.namespace(), None);
        assert_eq!(cluster_scoped.name(), "n1");
        assert_eq!(cluster_scoped.uid(), "");
        assert!(hashbrown::Equivalent::equivalent(&Lookup("Node.//n1"), &cluster_scoped));
        assert_eq!(cluster_scoped.lookup(), "Node./ /n1".replace(' ', ""));
    }

    #[test]
    fn objects_without_kind_or_name_are_refused() {
        assert_eq!(
            Admitted::read(&json!({"metadata": {"name": "x"}})).err(),
            Some(Missing::Kind)
        );
        assert_eq!(Admitted::read(&json!({"kind": "Pod"})).err(), Some(Missing::Name));
        assert_eq!(Admitted::read(&json!({})).err(), Some(Missing::KindAndName));
    }
}
