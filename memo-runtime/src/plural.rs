//! The plural a Kubernetes API server gives a kind, for selectors such as `"ingresses"` without a
//! cluster to ask: the rules of kube-rs (`kube_core::discovery::to_plural`) and of Kubernetes'
//! own guess (`meta.UnsafeGuessKindToResource`), with their irregular cases. Custom resources
//! declare their plural; the common ones follow these rules.

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
    if let Some(stem) = kind.strip_suffix('y') {
        if stem.chars().last().is_some_and(|c| !"aeiou".contains(c)) {
            return format!("{stem}ies");
        }
    }
    format!("{kind}s")
}

#[cfg(test)]
mod tests {
    use super::plural_of;

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
