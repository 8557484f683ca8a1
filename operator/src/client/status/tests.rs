use gatehouse_crds::resolve;

use super::*;
use crate::rotation::Plan;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// A client whose last status recorded a rotation and a rotate annotation.
fn client() -> OAuthClient {
    let mut c = OAuthClient::test("billing").in_namespace("team-a");
    c.metadata.generation = Some(3);
    c.status = Some(OAuthClientStatus {
        client_id: Some("billing.team-a".into()),
        secret_name: Some("billing-oauth".into()),
        secret_rotated_at: Some(t(0).to_string()),
        next_rotation_at: Some(t(86_400).to_string()),
        rotate_annotation: Some("v1".into()),
        observed_generation: Some(2),
        conditions: cond::merge(
            &[],
            &[Desired::ok(cond::READY, cond::REASON_RECONCILED, "ready")],
            Some(2),
            t(0),
        ),
        ..Default::default()
    });
    c
}

fn failed(type_: &'static str) -> Desired {
    Desired::failed(type_, cond::REASON_INVALID_POLICY, "bad")
}

#[test]
fn a_reconciled_client_shows_its_effective_settings_and_the_new_rotation_times() {
    let c = client();
    let resolution = resolve(&c, &gatehouse_crds::Cluster::default()).unwrap();
    let outcome = SecretOutcome {
        digests: vec![],
        plan: Some(Plan {
            rotate: None,
            rotated_at: t(100),
            grace_until: None,
            next_rotation_at: Some(t(200)),
        }),
        rotate_handled: Some("v2".into()),
        refused: None,
    };
    let conditions = with_ready(
        Desired::ok(cond::SECRET_SYNCED, cond::REASON_RECONCILED, "ok"),
        Desired::ok(cond::REGISTERED, cond::REASON_RECONCILED, "ok"),
    );
    let s = status(
        &c,
        Progress::Resolved {
            resolution: &resolution,
            secret: Some(&outcome),
        },
        &conditions,
        t(100),
    );
    assert_eq!(s.client_id.as_deref(), Some("billing.team-a"));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.effective.as_ref(), Some(&resolution.effective));
    assert_eq!(s.secret_rotated_at, Some(t(100).to_string()));
    assert_eq!(s.next_rotation_at, Some(t(200).to_string()));
    assert_eq!(s.rotate_annotation.as_deref(), Some("v2"));
    assert!(cond::is_true(&s.conditions, cond::READY));
    assert_eq!(s.conditions.len(), 3);
}

#[test]
fn a_failed_secret_step_keeps_the_last_rotation_times_and_drops_the_rotate_annotation() {
    let c = client();
    let resolution = resolve(&c, &gatehouse_crds::Cluster::default()).unwrap();
    let conditions = with_ready(failed(cond::SECRET_SYNCED), failed(cond::REGISTERED));
    let s = status(
        &c,
        Progress::Resolved {
            resolution: &resolution,
            secret: None,
        },
        &conditions,
        t(100),
    );
    assert_eq!(s.secret_rotated_at, Some(t(0).to_string()));
    assert_eq!(s.next_rotation_at, Some(t(86_400).to_string()));
    assert_eq!(s.rotate_annotation, None);
    assert!(!cond::is_true(&s.conditions, cond::READY));
}

#[test]
fn unresolved_policies_keep_the_rotation_state_but_show_no_effective_settings() {
    let c = client();
    let conditions = with_ready(failed(cond::SECRET_SYNCED), failed(cond::REGISTERED));
    let s = status(&c, Progress::Unresolved, &conditions, t(100));
    assert_eq!(s.effective, None);
    assert!(s.applied_policies.is_empty());
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.secret_rotated_at, Some(t(0).to_string()));
    assert_eq!(s.rotate_annotation.as_deref(), Some("v1"));
    assert_eq!(
        cond::find(&s.conditions, cond::READY).unwrap().reason,
        cond::REASON_INVALID_POLICY
    );
}

#[test]
fn while_deleting_only_the_conditions_change() {
    let c = client();
    let desired = [
        failed(cond::REGISTERED),
        Desired::failed(cond::READY, cond::REASON_DELETING, "pending"),
    ];
    let s = status(&c, Progress::Deleting, &desired, t(100));
    let old = c.status.clone().unwrap();
    assert_eq!(s.observed_generation, old.observed_generation);
    assert_eq!(s.secret_rotated_at, old.secret_rotated_at);
    assert_eq!(s.rotate_annotation, old.rotate_annotation);
    assert_eq!(
        cond::find(&s.conditions, cond::READY).unwrap().reason,
        cond::REASON_DELETING
    );
}

#[test]
fn the_legacy_digests_annotation_is_taken_off_a_copy_with_what_it_held() {
    let digest = SecretDigest {
        sha256: gatehouse_crds::admin::secret_digest("s"),
        expires_at: Some(60),
    };
    let mut c = client();
    assert!(without_legacy_digests(&c).is_none(), "nothing to migrate");
    c.annotations_mut().insert(
        sec::LEGACY_REGISTERED_DIGESTS.into(),
        serde_json::to_string(&[&digest]).unwrap(),
    );
    c.annotations_mut().insert("team".into(), "a".into());
    let (cleaned, digests) = without_legacy_digests(&c).unwrap();
    assert_eq!(digests, Some(vec![digest]));
    assert_eq!(
        cleaned.annotations().keys().collect::<Vec<_>>(),
        ["team"],
        "only the legacy annotation goes"
    );

    c.annotations_mut()
        .insert(sec::LEGACY_REGISTERED_DIGESTS.into(), "not json".into());
    let (_, digests) = without_legacy_digests(&c).unwrap();
    assert_eq!(digests, None, "a malformed one is removed all the same");
}
