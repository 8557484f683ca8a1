//! Condition types and reasons, and the pure rule that merges a freshly computed condition into the
//! existing list (keeping `lastTransitionTime` while the status does not change).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The client is usable: its Secret is in place and the token server accepts it.
pub const READY: &str = "Ready";
/// The client's Secret holds the credentials the operator registered.
pub const SECRET_SYNCED: &str = "SecretSynced";
/// The token server holds the client's current registration.
pub const REGISTERED: &str = "Registered";

/// Every step succeeded.
pub const REASON_RECONCILED: &str = "Reconciled";
/// `existingSecretRef` names a Secret that does not exist (yet).
pub const REASON_SECRET_MISSING: &str = "SecretMissing";
/// `existingSecretRef` names a Secret without the client-secret key.
pub const REASON_SECRET_KEY_MISSING: &str = "SecretKeyMissing";
/// `existingSecretRef` names a secret shorter than
/// [`MIN_SECRET_BYTES`](gatehouse_crds::credentials::MIN_SECRET_BYTES): it is not registered, and the
/// client is registered with no secret at all until the Secret holds a long enough one.
pub const REASON_SECRET_TOO_WEAK: &str = "SecretTooWeak";
/// The token server's admin API could not be reached, or answered with a server error.
pub const REASON_SERVER_UNAVAILABLE: &str = "ServerUnavailable";
/// The token server refused the registration; the spec has to change.
pub const REASON_REGISTRATION_FAILED: &str = "RegistrationFailed";
/// The client_id is not the namespace's (it does not end in `.<namespace>` and no allowance grants it),
/// or another OAuthClient holds it and the token server kept that registration.
pub const REASON_CLIENT_ID_CONFLICT: &str = "ClientIdConflict";
/// A selecting OAuthPolicy cannot be evaluated (bad selector or duration).
pub const REASON_INVALID_POLICY: &str = "InvalidPolicy";
/// The generated Secret's name is taken by a Secret this client does not own.
pub const REASON_SECRET_CONFLICT: &str = "SecretConflict";
/// The client's own spec cannot be acted on (for instance a malformed rotation period).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Registration waits for the Secret step.
pub const REASON_WAITING_FOR_SECRET: &str = "WaitingForSecret";
/// The object is being deleted and its registration is being removed.
pub const REASON_DELETING: &str = "Deleting";

/// Policy condition: the policy was evaluated against the clients of its namespace.
pub const REASON_POLICY_APPLIED: &str = "Applied";

/// Condition status strings.
pub const TRUE: &str = "True";
/// Condition status strings.
pub const FALSE: &str = "False";

/// A condition as computed by a reconcile, before it is merged into status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Condition type, one of the constants above.
    pub type_: &'static str,
    /// Whether the condition holds.
    pub ok: bool,
    /// CamelCase reason, one of the constants above.
    pub reason: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl Desired {
    /// A condition that holds.
    pub fn ok(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn failed(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// Merges `desired` into `existing`: conditions of other types are kept, `lastTransitionTime` moves
/// only when the status flips, and the result is sorted by type so that status stays stable.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let status = if d.ok { TRUE } else { FALSE };
        let last_transition_time = existing
            .iter()
            .find(|c| c.type_ == d.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(Condition {
            type_: d.type_.to_owned(),
            status: status.to_owned(),
            reason: d.reason.to_owned(),
            message: d.message.clone(),
            last_transition_time,
            observed_generation: generation,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The condition of `type_` in `conditions`, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether `conditions` hold `type_` with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == TRUE)
}

/// The Ready condition that follows from the step conditions: True only when every step is True; else
/// False with the reason and message of the first failed step. Never True after a failed step.
pub fn ready(steps: &[Desired]) -> Desired {
    match steps.iter().find(|s| !s.ok) {
        Some(failed) => Desired::failed(READY, failed.reason, failed.message.clone()),
        None => Desired::ok(
            READY,
            REASON_RECONCILED,
            "the Secret is in place and the client is registered",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn ready_is_true_only_when_every_step_is_true() {
        let ok = [
            Desired::ok(SECRET_SYNCED, REASON_RECONCILED, "s"),
            Desired::ok(REGISTERED, REASON_RECONCILED, "r"),
        ];
        assert_eq!(
            ready(&ok),
            Desired::ok(
                READY,
                REASON_RECONCILED,
                "the Secret is in place and the client is registered"
            )
        );
        let failed = [
            Desired::ok(SECRET_SYNCED, REASON_RECONCILED, "s"),
            Desired::failed(REGISTERED, REASON_SERVER_UNAVAILABLE, "connection refused"),
        ];
        assert_eq!(
            ready(&failed),
            Desired::failed(READY, REASON_SERVER_UNAVAILABLE, "connection refused")
        );
    }

    #[test]
    fn ready_takes_the_reason_of_the_first_failed_step() {
        let steps = [
            Desired::failed(SECRET_SYNCED, REASON_SECRET_MISSING, "no Secret byo"),
            Desired::failed(REGISTERED, REASON_WAITING_FOR_SECRET, "waiting"),
        ];
        let r = ready(&steps);
        assert!(!r.ok);
        assert_eq!(r.reason, REASON_SECRET_MISSING);
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let first = merge(
            &[],
            &[Desired::failed(REGISTERED, REASON_SERVER_UNAVAILABLE, "down")],
            Some(1),
            at(100),
        );
        assert_eq!(first[0].last_transition_time, Time(at(100)));
        assert_eq!(first[0].status, FALSE);

        let same = merge(
            &first,
            &[Desired::failed(REGISTERED, REASON_REGISTRATION_FAILED, "bad")],
            Some(2),
            at(200),
        );
        assert_eq!(same[0].last_transition_time, Time(at(100)));
        assert_eq!(same[0].reason, REASON_REGISTRATION_FAILED);
        assert_eq!(same[0].observed_generation, Some(2));

        let flipped = merge(
            &same,
            &[Desired::ok(REGISTERED, REASON_RECONCILED, "ok")],
            Some(2),
            at(300),
        );
        assert_eq!(flipped[0].last_transition_time, Time(at(300)));
        assert_eq!(flipped[0].status, TRUE);
    }

    #[test]
    fn merge_keeps_other_types_and_sorts_by_type() {
        let a = merge(
            &[],
            &[Desired::ok(SECRET_SYNCED, REASON_RECONCILED, "")],
            None,
            at(1),
        );
        let b = merge(
            &a,
            &[
                Desired::ok(READY, REASON_RECONCILED, ""),
                Desired::ok(REGISTERED, REASON_RECONCILED, ""),
            ],
            None,
            at(2),
        );
        let types: Vec<_> = b.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, REGISTERED, SECRET_SYNCED]);
        assert!(is_true(&b, SECRET_SYNCED));
    }
}
