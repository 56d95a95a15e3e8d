//! Which resources the handlers' kinds name, asked of the API server's discovery: a selector
//! (`KopfExample`, `kopfexample`, `kopfexamples`, `kopfexamples.kopf.dev`) resolves to a served
//! resource, or the operator does not start.

use crate::api::error::{Error, Result, UnknownKind};
use crate::contract::registry::{Registration, Trigger};
use crate::plan::catalog::Selector;
use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

/// A resource to watch, and the handlers that asked for it.
#[derive(Debug)]
pub(super) struct Watched {
    pub(super) resource: ApiResource,
    pub(super) namespaced: bool,
    /// Whether the kind is served with the `status` subresource: then a write of the object
    /// ignores `status`, and handlers' status changes go to `/status`.
    pub(super) status_subresource: bool,
    pub(super) handlers: Vec<&'static str>,
}

/// The selectors of `handlers` (event and timer handlers), resolved through `client`'s discovery.
pub(super) async fn resolve(client: &Client, handlers: &[&'static Registration]) -> Result<Vec<Watched>> {
    let selectors = selectors(handlers);
    if selectors.is_empty() {
        return Ok(Vec::new());
    }
    // Every selector names its group: only those groups need asking (a cluster serves dozens).
    let groups: Option<Vec<&str>> = selectors
        .iter()
        .map(|(selector, _)| Selector::parse(selector).group())
        .collect();
    let discovery = match &groups {
        Some(groups) => Discovery::new(client.clone()).filter(groups),
        None => Discovery::new(client.clone()),
    };
    let discovery = discovery
        .run()
        .await
        .map_err(|err| Error::Kubernetes(format!("API discovery failed: {err}")))?;
    let mut groups: Vec<_> = discovery.groups().collect();
    // The core group first, as kubectl prefers it (`events` is the core `Event`).
    groups.sort_by_key(|group| (!group.name().is_empty(), group.name().to_owned()));
    let served: Vec<(ApiResource, ApiCapabilities)> =
        groups.iter().flat_map(|group| group.recommended_resources()).collect();
    let watched = resolve_in(&served, &selectors)?;
    for watched in &watched {
        let resource = &watched.resource;
        crate::plan::plural::declare(&resource.group, &resource.kind, &resource.plural);
    }
    Ok(watched)
}

/// Each event or timer handler's selector, with the handler.
fn selectors(handlers: &[&'static Registration]) -> Vec<(&'static str, &'static Registration)> {
    handlers
        .iter()
        .filter_map(|&handler| match handler.trigger {
            Trigger::Event { resource, .. } | Trigger::Timer { resource, .. } => Some((resource, handler)),
            Trigger::Startup | Trigger::Cleanup => None,
        })
        .collect()
}

/// Resolves every selector among `served`, or names every one that resolves to nothing.
fn resolve_in(
    served: &[(ApiResource, ApiCapabilities)],
    selectors: &[(&'static str, &'static Registration)],
) -> Result<Vec<Watched>> {
    let mut watched: Vec<Watched> = Vec::new();
    let mut unknown = Vec::new();
    for &(text, handler) in selectors {
        let selector = Selector::parse(text);
        let found = served.iter().find(|(resource, capabilities)| {
            names(&selector, resource)
                && capabilities.supports_operation(verbs::LIST)
                && capabilities.supports_operation(verbs::WATCH)
        });
        let Some((resource, capabilities)) = found else {
            unknown.push(UnknownKind {
                kind: text.to_owned(),
                handler: handler.id.to_owned(),
                location: handler.location().to_string(),
                suggestion: suggest(&selector, served),
            });
            continue;
        };
        match watched.iter_mut().find(|w| same(&w.resource, resource)) {
            Some(existing) => {
                if !existing.handlers.contains(&handler.id) {
                    existing.handlers.push(handler.id);
                }
            }
            None => watched.push(Watched {
                resource: resource.clone(),
                namespaced: capabilities.scope == Scope::Namespaced,
                status_subresource: capabilities
                    .subresources
                    .iter()
                    .any(|(subresource, _)| subresource.plural == "status"),
                handlers: vec![handler.id],
            }),
        }
    }
    if unknown.is_empty() {
        Ok(watched)
    } else {
        Err(Error::UnknownKinds(unknown))
    }
}

/// Whether `selector` names `resource`: its kind (any case) or its plural, in its group if one
/// is given.
fn names(selector: &Selector<'_>, resource: &ApiResource) -> bool {
    selector
        .group()
        .is_none_or(|group| group.eq_ignore_ascii_case(&resource.group))
        && (selector.name().eq_ignore_ascii_case(&resource.kind)
            || selector.name().eq_ignore_ascii_case(&resource.plural))
}

fn same(a: &ApiResource, b: &ApiResource) -> bool {
    a.group == b.group && a.kind == b.kind
}

/// The served resource whose plural is closest to what the selector says, if it is close.
fn suggest(selector: &Selector<'_>, served: &[(ApiResource, ApiCapabilities)]) -> Option<String> {
    let name = selector.name().to_ascii_lowercase();
    let (distance, resource) = served
        .iter()
        .map(|(resource, _)| {
            let by_plural = edit_distance(&name, &resource.plural);
            let by_kind = edit_distance(&name, &resource.kind.to_ascii_lowercase());
            (by_plural.min(by_kind), resource)
        })
        .min_by_key(|&(distance, _)| distance)?;
    if distance == 0 || distance > (name.len() / 3).max(2) {
        // Distance 0: the name is served, but not in the group asked for; say which group.
        return (distance == 0).then(|| qualified(resource));
    }
    Some(match selector.group() {
        Some(_) => qualified(resource),
        None => resource.plural.clone(),
    })
}

fn qualified(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// Levenshtein distance, over bytes (kind names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.as_bytes().iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::registry::{EventFilter, Invoke};

    fn served() -> Vec<(ApiResource, ApiCapabilities)> {
        let resource = |group: &str, kind: &str, plural: &str, scope| {
            let api_version = if group.is_empty() {
                "v1".to_owned()
            } else {
                format!("{group}/v1")
            };
            let resource = ApiResource {
                group: group.to_owned(),
                version: "v1".to_owned(),
                api_version,
                kind: kind.to_owned(),
                plural: plural.to_owned(),
            };
            let capabilities = ApiCapabilities {
                scope,
                subresources: Vec::new(),
                operations: vec![verbs::LIST.to_owned(), verbs::WATCH.to_owned()],
            };
            (resource, capabilities)
        };
        vec![
            resource("", "ConfigMap", "configmaps", Scope::Namespaced),
            resource("", "Event", "events", Scope::Namespaced),
            resource("", "Namespace", "namespaces", Scope::Cluster),
            resource("events.k8s.io", "Event", "events", Scope::Namespaced),
            resource("kopf.dev", "KopfExample", "kopfexamples", Scope::Namespaced),
            resource("networking.k8s.io", "Ingress", "ingresses", Scope::Namespaced),
            resource("zoo.example", "Moose", "moose", Scope::Namespaced),
        ]
    }

    fn handler(id: &'static str, resource: &'static str) -> &'static Registration {
        fn noop(_: &mut crate::contract::context::Context<'_>) -> crate::contract::outcome::Outcome {
            Ok(())
        }
        Box::leak(Box::new(Registration {
            id,
            explicit_id: false,
            module_path: "tests",
            file: "src/main.rs",
            line: 7,
            column: 1,
            trigger: Trigger::Event {
                resource,
                filter: EventFilter::Any,
            },
            memo_type: None,
            component: None,
            uses_shared: false,
            uses_labels: false,
            uses_annotations: false,
            uses_patch: false,
            uses_recorder: false,
            uses_client: false,
            optional: false,
            invoke: Invoke::Sync(noop),
            retry: crate::contract::registry::RetryPolicy::DEFAULT,
            filters: crate::contract::registry::Filters::NONE,
        }))
    }

    fn resolve(selectors: &[(&'static str, &'static str)]) -> Result<Vec<Watched>> {
        let selectors: Vec<_> = selectors.iter().map(|&(id, text)| (text, handler(id, text))).collect();
        resolve_in(&served(), &selectors)
    }

    #[test]
    fn every_spelling_of_a_kind_resolves_to_one_watch() {
        let watched = resolve(&[
            ("a", "KopfExample"),
            ("b", "kopfexample"),
            ("c", "kopfexamples"),
            ("d", "kopfexamples.kopf.dev"),
            ("e", "KOPFEXAMPLES.KOPF.DEV"),
        ])
        .unwrap();
        assert_eq!(watched.len(), 1);
        assert_eq!(watched[0].resource.plural, "kopfexamples");
        assert_eq!(watched[0].handlers, ["a", "b", "c", "d", "e"]);
        assert!(watched[0].namespaced);
    }

    #[test]
    fn irregular_plurals_and_groups_resolve_as_served() {
        let watched = resolve(&[
            ("i", "ingresses"),
            ("m", "moose"),
            ("n", "namespaces"),
            ("e", "events.events.k8s.io"),
        ])
        .unwrap();
        let names: Vec<_> = watched
            .iter()
            .map(|w| (w.resource.group.as_str(), w.resource.kind.as_str(), w.namespaced))
            .collect();
        assert_eq!(
            names,
            [
                ("networking.k8s.io", "Ingress", true),
                ("zoo.example", "Moose", true),
                ("", "Namespace", false),
                ("events.k8s.io", "Event", true)
            ]
        );
        // Unqualified, the core group wins, as in kubectl.
        assert_eq!(resolve(&[("e", "events")]).unwrap()[0].resource.group, "");
    }

    #[test]
    fn unknown_kinds_are_all_named_with_handler_location_and_suggestion() {
        let Err(Error::UnknownKinds(unknown)) = resolve(&[
            ("ok", "configmaps"),
            ("typo", "kopfexampels"),
            ("far", "widgets"),
            ("group", "ingresses.kopf.dev"),
        ]) else {
            panic!("unknown kinds must fail");
        };
        assert_eq!(unknown.len(), 3);
        assert_eq!(unknown[0].kind, "kopfexampels");
        assert_eq!(unknown[0].handler, "typo");
        assert_eq!(unknown[0].location, "src/main.rs:7:1");
        assert_eq!(unknown[0].suggestion.as_deref(), Some("kopfexamples"));
        assert_eq!(unknown[1].suggestion, None);
        assert_eq!(unknown[2].suggestion.as_deref(), Some("ingresses.networking.k8s.io"));
        let message = Error::UnknownKinds(unknown).to_string();
        assert!(message.contains("handler `typo` at src/main.rs:7:1 selects `kopfexampels`, which the cluster does not serve; did you mean `kopfexamples`?"), "{message}");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kopfexampels", "kopfexamples"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("pods", "pods"), 0);
    }
}
