//! Who may replace or delete a registration. Namespaces are trust boundaries: an OAuthClient in one
//! namespace must not take over the client_id another namespace's OAuthClient holds, nor deregister it.
//!
//! A registration is held by the OAuthClient of its [`ClientOwner`], compared by namespace and name.
//! The uid is recorded and not compared: an OAuthClient deleted and created again under the same
//! name is the same client to its team, and its finalizer has removed the old registration (or its
//! `deletionPolicy: Orphan` left it to be adopted) before the name can be taken again.
//!
//! A registration without an owner (written before owners existed, by standalone mode, or by a
//! person with the admin token) is held by nobody in a cluster: a writer without an owner may replace
//! it, and an OAuthClient may adopt it only if the registration's `source` is that OAuthClient's
//! `namespace/name`, which is what the operator recorded before owners existed. A writer without an
//! owner may not replace an owned registration: it has to delete it first. A delete without an owner
//! (the admin token, by hand) removes whatever is there.

use gatehouse_crds::admin::{ClientOwner, ClientRegistration};

/// The OAuthClient a delete comes from, by namespace and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

impl<'a> From<&'a ClientOwner> for Claimant<'a> {
    fn from(owner: &'a ClientOwner) -> Self {
        Self {
            namespace: &owner.namespace,
            name: &owner.name,
        }
    }
}

/// Whether the OAuthClient `by` holds `stored`: it is its owner, or `stored` has no owner and was
/// declared by `by`.
pub fn held_by(stored: &ClientRegistration, by: Claimant<'_>) -> bool {
    match &stored.owner {
        Some(owner) => owner.namespace == by.namespace && owner.name == by.name,
        None => stored.source.as_deref() == Some(format!("{}/{}", by.namespace, by.name).as_str()),
    }
}

/// Whether a registration owned by `incoming` (`None`: no owner) may replace `stored`.
pub fn may_replace(stored: &ClientRegistration, incoming: Option<&ClientOwner>) -> bool {
    match incoming {
        Some(owner) => held_by(stored, owner.into()),
        None => stored.owner.is_none(),
    }
}

/// Whether a delete by `by` (`None`: the admin token, without an owner) removes `stored`.
pub fn may_delete(stored: &ClientRegistration, by: Option<Claimant<'_>>) -> bool {
    by.is_none_or(|by| held_by(stored, by))
}

/// Why a registration owned by `incoming` may not replace `stored`, for the 409 answer.
pub fn conflict_description(stored: &ClientRegistration, incoming: Option<&ClientOwner>) -> String {
    let id = &stored.client_id;
    match (&stored.owner, incoming) {
        (Some(owner), Some(_)) => format!("client_id {id} is registered by OAuthClient {}", owner.key()),
        (Some(owner), None) => format!(
            "client_id {id} is registered by OAuthClient {}; delete it first to register it without an owner",
            owner.key()
        ),
        (None, _) => format!(
            "client_id {id} is registered without an owner, from {}; only that OAuthClient may adopt it",
            stored.source.as_deref().unwrap_or("an unknown source")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::registration;

    fn owner(namespace: &str, name: &str, uid: &str) -> ClientOwner {
        ClientOwner {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    fn stored(owner: Option<ClientOwner>, source: Option<&str>) -> ClientRegistration {
        let mut doc = registration("orders.demo", "client_secret_basic", &["client_credentials"], &[]);
        doc.owner = owner;
        doc.source = source.map(str::to_owned);
        doc
    }

    #[test]
    fn an_oauth_client_of_another_namespace_or_name_may_not_replace_an_owned_registration() {
        let held = stored(Some(owner("demo", "orders", "u1")), Some("demo/orders"));
        assert!(!may_replace(&held, Some(&owner("evil", "orders", "u9"))));
        assert!(!may_replace(&held, Some(&owner("demo", "other", "u9"))));
        assert_eq!(
            conflict_description(&held, Some(&owner("evil", "orders", "u9"))),
            "client_id orders.demo is registered by OAuthClient demo/orders"
        );
    }

    #[test]
    fn the_owner_replaces_its_registration_and_so_does_its_recreation_with_a_new_uid() {
        let held = stored(Some(owner("demo", "orders", "u1")), None);
        assert!(may_replace(&held, Some(&owner("demo", "orders", "u1"))));
        assert!(may_replace(&held, Some(&owner("demo", "orders", "u2"))));
    }

    #[test]
    fn a_writer_without_an_owner_replaces_only_an_ownerless_registration() {
        assert!(may_replace(
            &stored(None, Some("clients-dir:shop/checkout")),
            None
        ));
        let held = stored(Some(owner("demo", "orders", "u1")), None);
        assert!(!may_replace(&held, None));
        assert!(
            conflict_description(&held, None).ends_with("delete it first to register it without an owner")
        );
    }

    #[test]
    fn an_ownerless_registration_is_adopted_only_by_the_oauth_client_its_source_names() {
        let legacy = stored(None, Some("demo/orders"));
        assert!(may_replace(&legacy, Some(&owner("demo", "orders", "u1"))));
        assert!(!may_replace(&legacy, Some(&owner("evil", "orders", "u1"))));
        assert!(!may_replace(
            &stored(None, None),
            Some(&owner("demo", "orders", "u1"))
        ));
        let standalone = stored(None, Some("clients-dir:demo/orders"));
        assert!(!may_replace(&standalone, Some(&owner("demo", "orders", "u1"))));
        assert_eq!(
            conflict_description(&standalone, Some(&owner("demo", "orders", "u1"))),
            "client_id orders.demo is registered without an owner, from clients-dir:demo/orders; only that OAuthClient may adopt it"
        );
    }

    #[test]
    fn only_the_holder_or_the_admin_token_deletes() {
        let held = stored(Some(owner("demo", "orders", "u1")), None);
        let by = |namespace, name| Some(Claimant { namespace, name });
        assert!(may_delete(&held, by("demo", "orders")));
        assert!(!may_delete(&held, by("evil", "orders")));
        assert!(may_delete(&held, None));
        let legacy = stored(None, Some("demo/orders"));
        assert!(may_delete(&legacy, by("demo", "orders")));
        assert!(!may_delete(&legacy, by("evil", "orders")));
    }
}
