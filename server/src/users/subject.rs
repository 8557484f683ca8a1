//! The `sub` of a user's tokens: `user:` and 32 lower-case hex digits, random, given when the user is
//! created and never reassigned, not even to a new user of the same name. Client tokens carry the
//! client_id as `sub`, and a client_id can never hold a `:` ([`gatehouse_crds::admin::check_client_id`]),
//! so the two spaces are disjoint and no client can pass for a user
//! ([RFC 9700 §4.15](https://www.rfc-editor.org/rfc/rfc9700#section-4.15)). Pure.

/// What every user subject starts with.
pub const PREFIX: &str = "user:";

/// A new user subject: 128 random bits.
pub fn new() -> String {
    format!("{PREFIX}{}", hex::encode(gatehouse_crds::random::bytes::<16>()))
}

/// Whether `sub` has the form of a user subject.
pub fn is_user(sub: &str) -> bool {
    sub.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The user a token speaks for, from its `sub` and its `client_id`: `None` for a client's own token.
/// A token whose `sub` is its own client_id is the client's, whatever that id looks like (a
/// registration stored before client_ids were checked could hold a colon).
pub fn of_token<'a>(sub: &'a str, client_id: &str) -> Option<&'a str> {
    (is_user(sub) && sub != client_id).then_some(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_subjects_are_user_and_32_lower_case_hex_digits_and_distinct() {
        let (a, b) = (new(), new());
        assert!(is_user(&a), "{a}");
        assert_eq!(a.len(), PREFIX.len() + 32);
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_user_form_is_a_user_subject() {
        assert!(is_user("user:0123456789abcdef0123456789abcdef"));
        for sub in [
            "alice",
            "billing",
            "user:",
            "user:0123456789ABCDEF0123456789ABCDEF",
            "user:0123456789abcdef0123456789abcde",
            "user:0123456789abcdef0123456789abcdef0",
            "user:alice",
            "User:0123456789abcdef0123456789abcdef",
        ] {
            assert!(!is_user(sub), "{sub}");
        }
    }

    #[test]
    fn a_client_token_speaks_for_no_user() {
        let alice = "user:0123456789abcdef0123456789abcdef";
        assert_eq!(of_token(alice, "app"), Some(alice));
        assert_eq!(
            of_token("alice", "alice"),
            None,
            "client_credentials of a client named alice"
        );
        assert_eq!(of_token("alice", "app"), None, "a username is not a subject");
        assert_eq!(
            of_token(alice, alice),
            None,
            "a client whose id looks like a subject"
        );
    }
}
