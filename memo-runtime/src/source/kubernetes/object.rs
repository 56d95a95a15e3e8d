//! The object type the watches ask kube for: the object as the API server sent it, kept as JSON.
//!
//! kube's `DynamicObject` parses `metadata` into a typed `ObjectMeta` (timestamps, label maps,
//! managed fields), which handlers would then need back as JSON: two conversions per event of
//! the part of the object that is often the largest. Kept as JSON, it is parsed once, by
//! serde_json; only the `resourceVersion` kube's watcher resumes from is copied out.

use kube::api::ApiResource;
use kube::core::{DynamicResourceScope, ObjectMeta, Resource};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;

#[derive(Clone, Debug)]
pub(super) struct Object {
    /// Only `resourceVersion`: the watcher's own bookkeeping reads nothing else.
    meta: ObjectMeta,
    pub(super) body: Value,
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let body = Value::deserialize(deserializer)?;
        let resource_version = crate::api::event::metadata_str(&body, "resourceVersion").map(str::to_owned);
        let meta = ObjectMeta {
            resource_version,
            ..ObjectMeta::default()
        };
        Ok(Object { meta, body })
    }
}

impl Resource for Object {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(resource: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&resource.kind)
    }

    fn group(resource: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&resource.group)
    }

    fn version(resource: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&resource.version)
    }

    fn api_version(resource: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&resource.api_version)
    }

    fn plural(resource: &ApiResource) -> Cow<'_, str> {
        Cow::Borrowed(&resource.plural)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::Object;
    use kube::core::Resource;
    use serde_json::json;

    #[test]
    fn the_body_is_kept_as_sent_and_the_resource_version_copied_out() {
        let sent = json!({"metadata": {"name": "a", "resourceVersion": "7", "uid": 5,
                                        "managedFields": [{"manager": "kubectl"}]}, "spec": {"n": 1}});
        let object: Object = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(object.body, sent);
        assert_eq!(object.meta().resource_version.as_deref(), Some("7"));
        assert_eq!(object.meta().name, None);
    }
}
