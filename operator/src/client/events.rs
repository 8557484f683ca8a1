//! The Events a client reconcile publishes: one per rotation, and one per condition that changed status
//! or reason (see [`transitions`]). What to say is decided by pure functions; publishing never fails a
//! reconcile.

use gatehouse_crds::OAuthClient;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Resource as _,
    runtime::events::{Event as KubeEvent, EventType},
};
use tracing::warn;

use crate::{
    Context,
    conditions::{self as cond, Desired},
    rotation::Trigger,
    secret as sec,
};

/// Publishes one Event about `client`; a failure is only logged.
pub async fn publish(ctx: &Context, client: &OAuthClient, type_: EventType, reason: &str, note: String) {
    let event = KubeEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder().publish(&event, &client.object_ref(&())).await {
        warn!(error = %e, reason, "could not publish event");
    }
}

/// The Event of a new secret in Secret `secret_name`, generated for `trigger`; the replaced secret works
/// until `grace_until`.
pub fn rotation(
    trigger: Trigger,
    secret_name: &str,
    grace_until: Option<Timestamp>,
) -> (EventType, &'static str, String) {
    let until = grace_until.map_or_else(|| "-".to_owned(), |t| t.to_string());
    match trigger {
        Trigger::Initial => (
            EventType::Normal,
            "SecretGenerated",
            format!("generated the client secret in Secret {secret_name}"),
        ),
        Trigger::Scheduled => (
            EventType::Normal,
            "SecretRotated",
            format!("rotated the client secret on schedule; the previous one works until {until}"),
        ),
        Trigger::Annotation => (
            EventType::Normal,
            "SecretRotated",
            format!(
                "rotated the client secret as requested by {}; the previous one works until {until}",
                sec::ROTATE
            ),
        ),
        Trigger::SecretLost => (
            EventType::Warning,
            "SecretRecreated",
            format!(
                "Secret {secret_name} was deleted: generated a new client secret; the old one works until {until}"
            ),
        ),
    }
}

/// The Events for the conditions in `new` that changed status or reason since `old`: `Ready` when the
/// client became ready, and a Warning named after the reason for every other condition that fails.
pub fn transitions(old: &[Condition], new: &[Desired]) -> Vec<(EventType, &'static str, String)> {
    new.iter()
        .filter(|d| {
            cond::find(old, d.type_).is_none_or(|b| (b.status == cond::TRUE) != d.ok || b.reason != d.reason)
        })
        .filter_map(|d| match (d.ok, d.type_ == cond::READY) {
            (true, true) => Some((EventType::Normal, "Ready", d.message.clone())),
            (false, false) => Some((EventType::Warning, d.reason, d.message.clone())),
            _ => None,
        })
        .collect()
}

/// Publishes [`transitions`].
pub async fn publish_transitions(ctx: &Context, client: &OAuthClient, old: &[Condition], new: &[Desired]) {
    for (type_, reason, note) in transitions(old, new) {
        publish(ctx, client, type_, reason, note).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_condition_is_an_event_and_an_unchanged_one_is_not() {
        let ready = Desired::ok(cond::READY, cond::REASON_RECONCILED, "ready");
        let failed = Desired::failed(cond::REGISTERED, cond::REASON_SERVER_UNAVAILABLE, "down");
        let old = cond::merge(&[], std::slice::from_ref(&ready), Some(1), Timestamp::UNIX_EPOCH);
        assert!(transitions(&old, std::slice::from_ref(&ready)).is_empty());
        let events = transitions(
            &old,
            &[
                failed,
                Desired::failed(cond::READY, cond::REASON_SERVER_UNAVAILABLE, "down"),
            ],
        );
        assert_eq!(events.len(), 1);
        assert!(matches!(
            events[0],
            (EventType::Warning, cond::REASON_SERVER_UNAVAILABLE, _)
        ));
        assert_eq!(transitions(&[], &[ready]).len(), 1);
    }

    #[test]
    fn a_lost_secret_is_a_warning_naming_the_end_of_the_grace_period() {
        let until = Timestamp::from_second(3600).unwrap();
        let (type_, reason, note) = rotation(Trigger::SecretLost, "billing-oauth", Some(until));
        assert!(matches!(type_, EventType::Warning));
        assert_eq!(reason, "SecretRecreated");
        assert!(note.ends_with("1970-01-01T01:00:00Z"), "{note}");
        assert_eq!(rotation(Trigger::Initial, "s", None).1, "SecretGenerated");
    }
}
