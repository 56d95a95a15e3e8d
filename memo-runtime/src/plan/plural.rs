//! The plural a Kubernetes API server gives a kind, for selectors such as `"ingresses"` without a
//! cluster to ask: the rules of kube-rs (`kube_core::discovery::to_plural`) and of Kubernetes'
//! own guess (`meta.UnsafeGuessKindToResource`), with their irregular cases. Custom resources
//! declare their plural; the common ones follow these rules.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

/// Plurals the API server declared in discovery, by (group, lowercase kind): they win over the
/// rules, so a custom resource with an irregular plural (`kind: Moose`, `plural: moose`) is
/// matched by what its CRD says. Read when a kind's plan is built, not per event.
static DECLARED: LazyLock<RwLock<HashMap<(String, String), String>>> = LazyLock::new(Default::default);

/// Records the plural the API server gives `kind` in `group` (`""` for the core group).
#[cfg_attr(not(feature = "kube"), allow(dead_code))]
pub(crate) fn declare(group: &str, kind: &str, plural: &str) {
    let mut declared = DECLARED.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    declared.insert(
        (group.to_ascii_lowercase(), kind.to_ascii_lowercase()),
        plural.to_ascii_lowercase(),
    );
}

/// The plural of `kind` in `group`: as discovery declared it, else by the rules.
pub(crate) fn plural_in(group: &str, kind: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    let declared = DECLARED.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(plural) = declared.get(&(group.to_ascii_lowercase(), kind.clone())) {
        return plural.clone();
    }
    drop(declared);
    plural_of(&kind)
}

/// The plural of a lowercase kind: `"ingress"` → `"ingresses"`, `"networkpolicy"` →
/// `"networkpolicies"`, `"endpoints"` → `"endpoints"`.
pub(crate) fn plural_of(kind: &str) -> String {
    match kind {
        // Already plural, or named after another resource.
        "endpoints" | "endpointslices" => return kind.to_owned(),
        "nodemetrics" => return "nodes".to_owned(),
        "podmetrics" => return "pods".to_owned(),
        _ => {}
    }
    if ["s", "x", "z", "ch", "sh"].iter().any(|end| kind.ends_with(end)) {
        return format!("{kind}es");
    }
    if let Some(stem) = kind.strip_suffix('y')
        && stem.chars().last().is_some_and(|c| !"aeiou".contains(c))
    {
        return format!("{stem}ies");
    }
    format!("{kind}s")
}

#[cfg(test)]
mod tests {
    use super::{declare, plural_in, plural_of};

    #[test]
    fn declared_plurals_win_over_the_rules() {
        assert_eq!(plural_in("zoo.example", "Moose"), "mooses");
        declare("zoo.example", "Moose", "moose");
        assert_eq!(plural_in("zoo.example", "Moose"), "moose");
        assert_eq!(plural_in("other.example", "Moose"), "mooses");
    }

    #[test]
    fn regular_and_irregular_kinds() {
        let cases = [
            ("pod", "pods"),
            ("kopfexample", "kopfexamples"),
            ("ingress", "ingresses"),
            ("networkpolicy", "networkpolicies"),
            ("podsecuritypolicy", "podsecuritypolicies"),
            ("storageclass", "storageclasses"),
            ("endpoints", "endpoints"),
            ("endpointslice", "endpointslices"),
            ("gateway", "gateways"),
            ("proxy", "proxies"),
            ("box", "boxes"),
            ("batch", "batches"),
            ("mesh", "meshes"),
        ];
        for (kind, plural) in cases {
            assert_eq!(plural_of(kind), plural, "{kind}");
        }
    }
}
