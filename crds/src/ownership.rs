//! Which client_ids a namespace may declare. A client_id belongs to the namespace it ends in: every
//! client_id of namespace `shop` ends in `.shop`, and as namespace names hold no dot, no two namespaces
//! share one. A platform team grants a namespace other ids, or prefixes of ids, with the annotation
//! [`CLIENT_IDS_ANNOTATION`] on the Namespace, which application teams cannot edit (a Namespace is
//! cluster-scoped).
//!
//! The chart's ValidatingAdmissionPolicy (`charts/gatehouse/files/client-id-policy.yaml`) enforces this
//! rule at admission, and the operator enforces it again with [`client_id_allowed`], so that a cluster
//! without the admission policy is just as safe. The admission policy reads the allowance from the
//! Namespace rather than from a cluster-scoped parameter object because a policy bound to several
//! parameter objects must pass for every one of them: it cannot express "any allowance grants it".

/// Annotation on a Namespace: a comma-separated list of client_ids its OAuthClients may declare besides
/// those ending in `.<namespace>`. An entry ending in `*` grants every id that starts with the rest.
pub const CLIENT_IDS_ANNOTATION: &str = "gatehouse.dev/client-ids";

/// Whether an OAuthClient in `namespace` may hold `client_id`, given the value of the Namespace's
/// [`CLIENT_IDS_ANNOTATION`].
pub fn client_id_allowed(client_id: &str, namespace: &str, allowance: Option<&str>) -> bool {
    if client_id.len() > namespace.len() + 1
        && client_id.ends_with(namespace)
        && client_id[..client_id.len() - namespace.len()].ends_with('.')
    {
        return true;
    }
    allowance.into_iter().flat_map(|a| a.split(',')).any(|entry| {
        let entry = entry.trim();
        match entry.strip_suffix('*') {
            Some(prefix) => !prefix.is_empty() && client_id.starts_with(prefix),
            None => !entry.is_empty() && entry == client_id,
        }
    })
}

/// Why `client_id` is refused in `namespace`: the admission policy's message, word for word.
pub fn refusal(client_id: &str, namespace: &str) -> String {
    format!(
        "spec.clientId: {client_id} must end in .{namespace}, its namespace, unless the annotation \
         {CLIENT_IDS_ANNOTATION} of Namespace {namespace} grants it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_ending_in_the_namespace_is_the_namespaces() {
        assert!(client_id_allowed("orders.shop", "shop", None));
        assert!(client_id_allowed("a.b.shop", "shop", None));
    }

    #[test]
    fn an_id_of_another_namespace_or_a_lookalike_is_refused() {
        assert!(!client_id_allowed("orders.demo", "shop", None));
        assert!(!client_id_allowed("orders-shop", "shop", None));
        assert!(!client_id_allowed("ordersshop", "shop", None));
        assert!(!client_id_allowed(".shop", "shop", None));
        assert!(!client_id_allowed("shop", "shop", None));
        assert!(!client_id_allowed("orders.workshop", "shop", None));
    }

    #[test]
    fn the_namespace_annotation_grants_ids_and_prefixes() {
        let allowance = Some(" legacy-billing , partner-* ,");
        assert!(client_id_allowed("legacy-billing", "shop", allowance));
        assert!(client_id_allowed("partner-acme", "shop", allowance));
        assert!(!client_id_allowed("legacy-billing-2", "shop", allowance));
        assert!(!client_id_allowed("orders.demo", "shop", allowance));
    }

    #[test]
    fn empty_entries_and_a_bare_star_grant_nothing() {
        assert!(!client_id_allowed("anything", "shop", Some("")));
        assert!(!client_id_allowed("anything", "shop", Some(" , ")));
        assert!(!client_id_allowed("anything", "shop", Some("*")));
    }

    #[test]
    fn the_refusal_names_the_field() {
        assert!(refusal("orders.demo", "evil").starts_with("spec.clientId: orders.demo must end in .evil"));
    }
}
