//! Writing an event's merged patch back to its object: one merge-patch request for the object,
//! and its `status` part through the `/status` subresource when the kind has one (a write of the
//! main resource ignores `status` there). Never a GET first: the API budget is one request per
//! part.

use crate::api::patch::Patch;
use crate::contract::cluster::{WriteError, Written};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PatchParams};

/// Where an object lives, as the writer addresses it.
pub(crate) struct Target<'a> {
    pub(crate) resource: &'a ApiResource,
    /// Whether the kind is served with the `status` subresource.
    pub(crate) status_subresource: bool,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: &'a str,
}

/// Applies `patch` to the object at `target`.
pub(crate) async fn write(client: &Client, target: &Target<'_>, patch: Patch) -> Result<Written, WriteError> {
    if patch.is_empty() {
        return Ok(Written::Applied(0));
    }
    let api: Api<DynamicObject> = match target.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, target.resource),
        None => Api::all_with(client.clone(), target.resource),
    };
    let params = PatchParams::default();
    let parts = if target.status_subresource {
        let (main, status) = patch.split_status();
        [main.map(|main| (false, main)), status.map(|status| (true, status))]
    } else {
        [Some((false, patch.into_value())), None]
    };
    let mut requests = 0;
    for (status, body) in parts.into_iter().flatten() {
        let sent = if status {
            api.patch_status(target.name, &params, &kube::api::Patch::Merge(&body))
                .await
        } else {
            api.patch(target.name, &params, &kube::api::Patch::Merge(&body)).await
        };
        requests += 1;
        match sent {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Written::Gone),
            Err(kube::Error::Api(status)) => {
                return Err(WriteError {
                    code: Some(status.code),
                    message: format!("{} {}: {}", status.code, status.reason, status.message),
                });
            }
            Err(err) => {
                return Err(WriteError {
                    code: None,
                    message: err.to_string(),
                });
            }
        }
    }
    Ok(Written::Applied(requests))
}

#[cfg(test)]
mod tests {
    use super::{Target, write};
    use crate::api::patch::Patch;
    use crate::contract::cluster::Written;
    use crate::source::kubernetes::fake_api;
    use kube::api::ApiResource;
    use serde_json::json;

    fn kopf_examples() -> ApiResource {
        ApiResource {
            group: "kopf.dev".into(),
            version: "v1".into(),
            api_version: "kopf.dev/v1".into(),
            kind: "KopfExample".into(),
            plural: "kopfexamples".into(),
        }
    }

    #[tokio::test]
    async fn spec_and_status_go_in_one_request_each_and_nothing_else_is_asked() {
        let fake = fake_api::FakeApi::new();
        fake.add_kind("kopf.dev", "v1", "KopfExample", "kopfexamples", true);
        fake.create("kopfexamples", Some("default"), "e1", json!({"size": 1}));
        fake.reset_counts();
        let resource = kopf_examples();
        let target = Target {
            resource: &resource,
            status_subresource: true,
            namespace: Some("default"),
            name: "e1",
        };
        let mut patch = Patch::new();
        patch.set("/spec/size", 3);
        patch.set("/status/phase", "Updated");
        patch.set("/metadata/labels/tier", "web");
        let written = write(&fake.client(), &target, patch).await.unwrap();
        assert_eq!(written, Written::Applied(2));
        let object = fake.object("kopfexamples", Some("default"), "e1").unwrap();
        assert_eq!(object["spec"]["size"], 3);
        assert_eq!(object["status"]["phase"], "Updated");
        assert_eq!(object["metadata"]["labels"]["tier"], "web");
        assert_eq!(
            fake.count("PATCH", "/apis/kopf.dev/v1/namespaces/default/kopfexamples/e1"),
            2
        );
        assert_eq!(fake.count("GET", "/"), 0, "no read before a write");

        let mut status_only = Patch::new();
        status_only.set("/status/phase", "Done");
        fake.reset_counts();
        let written = write(&fake.client(), &target, status_only).await.unwrap();
        assert_eq!(written, Written::Applied(1));
        assert_eq!(
            fake.count("PATCH", "/apis/kopf.dev/v1/namespaces/default/kopfexamples/e1/status"),
            1
        );
        assert_eq!(
            write(&fake.client(), &target, Patch::new()).await.unwrap(),
            Written::Applied(0)
        );
    }

    #[tokio::test]
    async fn without_the_subresource_one_request_carries_all_and_a_gone_object_is_no_error() {
        let fake = fake_api::FakeApi::new();
        fake.create("configmaps", Some("default"), "c1", json!({}));
        let resource = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        let mut target = Target {
            resource: &resource,
            status_subresource: false,
            namespace: Some("default"),
            name: "c1",
        };
        let mut patch = Patch::new();
        patch.merge(json!({"data": {"a": "1"}, "metadata": {"annotations": {"x": "y"}}}));
        assert_eq!(
            write(&fake.client(), &target, patch).await.unwrap(),
            Written::Applied(1)
        );
        let object = fake.object("configmaps", Some("default"), "c1").unwrap();
        assert_eq!(object["data"]["a"], "1");
        assert_eq!(object["metadata"]["annotations"]["x"], "y");

        target.name = "gone";
        let mut patch = Patch::new();
        patch.set("/data/a", "2");
        assert_eq!(write(&fake.client(), &target, patch).await.unwrap(), Written::Gone);
        let mut patch = Patch::new();
        patch.set("/data/a", "2");
        fake.fail_next_writes(1);
        assert!(
            write(&fake.client(), &target, patch).await.is_err(),
            "a 500 is an error"
        );
    }
}
