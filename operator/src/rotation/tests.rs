use super::*;

const HOUR: SignedDuration = SignedDuration::from_hours(1);
const DAY: SignedDuration = SignedDuration::from_hours(24);

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn existing(rotated_at: Timestamp) -> Input<'static> {
    Input {
        period: Some(DAY),
        grace: HOUR,
        secret_exists: true,
        rotated_at: Some(rotated_at),
        registered_before: true,
        ..Default::default()
    }
}

fn rotation(period: &str, grace: Option<&str>) -> gatehouse_crds::Rotation {
    gatehouse_crds::Rotation {
        period: gatehouse_crds::Duration::new(period),
        grace_period: grace.map(gatehouse_crds::Duration::new),
    }
}

fn current_digest(secret: &str) -> SecretDigest {
    SecretDigest {
        sha256: secret_digest(secret),
        expires_at: None,
    }
}

#[test]
fn a_first_secret_is_fresh_and_registered_alone() {
    let d = decide(&Observed::default(), t(0), || "fresh".into()).unwrap();
    assert_eq!(d.plan.rotate, Some(Trigger::Initial));
    assert_eq!((d.secret.as_str(), d.previous), ("fresh", None));
    assert_eq!(d.digests, vec![current_digest("fresh")]);
}

#[test]
fn an_unchanged_secret_is_kept_and_no_fresh_one_is_drawn() {
    let remembered = [current_digest("cur")];
    let spec = rotation("720h", None);
    let observed = Observed {
        rotation: Some(&spec),
        current: Some("cur"),
        rotated_at: Some(t(0)),
        handled: Some("v1"),
        annotation: Some("v1"),
        remembered: &remembered,
        ..Default::default()
    };
    let d = decide(&observed, t(7200), || panic!("no new secret")).unwrap();
    assert_eq!(d.plan.rotate, None);
    assert_eq!(d.secret, "cur");
    assert_eq!(d.previous, None);
    assert_eq!(d.rotate_handled.as_deref(), Some("v1"));
    assert_eq!(d.digests, vec![current_digest("cur")]);
}

#[test]
fn a_new_rotate_value_keeps_the_old_secret_through_the_grace_period_then_drops_it() {
    let remembered = [current_digest("old")];
    let spec = rotation("720h", Some("10m"));
    let before = Observed {
        rotation: Some(&spec),
        current: Some("old"),
        rotated_at: Some(t(0)),
        annotation: Some("v2"),
        handled: Some("v1"),
        remembered: &remembered,
        ..Default::default()
    };
    let rotated = decide(&before, t(100), || "new".into()).unwrap();
    assert_eq!(rotated.plan.rotate, Some(Trigger::Annotation));
    assert_eq!(rotated.secret, "new");
    assert_eq!(rotated.previous.as_deref(), Some("old"));
    assert_eq!(rotated.rotate_handled.as_deref(), Some("v2"));
    assert_eq!(
        rotated.digests,
        vec![
            current_digest("new"),
            SecretDigest {
                sha256: secret_digest("old"),
                expires_at: Some(t(700).as_second())
            }
        ]
    );

    let remembered = rotated.digests.clone();
    let during = Observed {
        rotation: Some(&spec),
        current: Some("new"),
        previous: Some("old"),
        rotated_at: Some(t(100)),
        annotation: Some("v2"),
        handled: Some("v2"),
        remembered: &remembered,
    };
    let kept = decide(&during, t(699), || panic!("no new secret")).unwrap();
    assert_eq!(kept.previous.as_deref(), Some("old"));
    assert_eq!(kept.digests, rotated.digests);
    let over = decide(&during, t(700), || panic!("no new secret")).unwrap();
    assert_eq!(over.previous, None);
    assert_eq!(over.digests, vec![current_digest("new")]);
}

#[test]
fn a_lost_secret_is_replaced_and_its_digest_expires_with_the_grace_period() {
    let remembered = [current_digest("lost")];
    let observed = Observed {
        remembered: &remembered,
        annotation: Some("v1"),
        ..Default::default()
    };
    let d = decide(&observed, t(0), || "fresh".into()).unwrap();
    assert_eq!(d.plan.rotate, Some(Trigger::SecretLost));
    assert_eq!(d.previous, None);
    assert_eq!(d.rotate_handled.as_deref(), Some("v1"));
    assert_eq!(
        d.digests[1],
        SecretDigest {
            sha256: secret_digest("lost"),
            expires_at: Some(t(3600).as_second())
        }
    );
}

#[test]
fn a_malformed_period_or_grace_period_is_an_error() {
    for spec in [rotation("soon", None), rotation("1h", Some("later"))] {
        let observed = Observed {
            rotation: Some(&spec),
            ..Default::default()
        };
        assert!(matches!(
            decide(&observed, t(0), || "fresh".into()),
            Err(gatehouse_crds::Error::InvalidDuration(_))
        ));
    }
}

#[test]
fn a_new_client_gets_its_first_secret_without_grace() {
    let input = Input {
        period: Some(DAY),
        grace: HOUR,
        ..Default::default()
    };
    let plan = plan(&input, t(0));
    assert_eq!(plan.rotate, Some(Trigger::Initial));
    assert_eq!(plan.rotated_at, t(0));
    assert_eq!(plan.grace_until, None);
    assert_eq!(plan.next_rotation_at, Some(t(86_400)));
}

#[test]
fn nothing_rotates_before_the_period_elapses() {
    let plan = plan(&existing(t(0)), t(86_399));
    assert_eq!(plan.rotate, None);
    assert_eq!(plan.rotated_at, t(0));
    assert_eq!(plan.next_rotation_at, Some(t(86_400)));
}

#[test]
fn the_period_elapsing_rotates_and_opens_a_grace_period() {
    let plan = plan(&existing(t(0)), t(86_400));
    assert_eq!(plan.rotate, Some(Trigger::Scheduled));
    assert_eq!(plan.rotated_at, t(86_400));
    assert_eq!(plan.grace_until, Some(t(86_400 + 3600)));
    assert_eq!(plan.next_rotation_at, Some(t(2 * 86_400)));
}

#[test]
fn a_new_annotation_value_rotates_and_the_same_value_does_not() {
    let mut input = existing(t(0));
    input.period = None;
    input.annotation = Some("2026-11-27");
    input.handled_annotation = Some("2026-11-01");
    let rotated = plan(&input, t(10));
    assert_eq!(rotated.rotate, Some(Trigger::Annotation));
    assert_eq!(rotated.grace_until, Some(t(3610)));
    assert_eq!(rotated.next_rotation_at, None);

    input.handled_annotation = Some("2026-11-27");
    assert_eq!(plan(&input, t(20)).rotate, None);
}

#[test]
fn a_deleted_secret_that_was_registered_is_a_rotation() {
    let mut input = existing(t(0));
    input.secret_exists = false;
    let plan = plan(&input, t(500));
    assert_eq!(plan.rotate, Some(Trigger::SecretLost));
    assert_eq!(plan.grace_until, Some(t(500 + 3600)));
}

#[test]
fn grace_is_over_once_its_deadline_passes() {
    let plan = plan(&existing(t(0)), t(100));
    assert!(in_grace(&plan, t(3599)));
    assert!(!in_grace(&plan, t(3600)));
}

#[test]
fn requeue_lands_just_after_the_nearest_deadline() {
    let resync = StdDuration::from_secs(300);
    let p = plan(&existing(t(0)), t(3500));
    // Grace ends at t(3600): 100 s away, sooner than the resync.
    assert_eq!(
        requeue_after(&p, t(3500), resync),
        StdDuration::from_millis(100_200)
    );
    // After the grace, the next rotation is far away: the resync wins.
    assert_eq!(requeue_after(&p, t(3700), resync), resync);
    let soon = Plan {
        rotate: None,
        rotated_at: t(0),
        grace_until: None,
        next_rotation_at: Some(t(10)),
    };
    assert_eq!(requeue_after(&soon, t(9), resync), StdDuration::from_millis(1200));
    assert_eq!(requeue_after(&soon, t(10), resync), resync);
}

#[test]
fn during_grace_both_digests_are_registered_and_afterwards_only_the_new_one() {
    let during = digests("new", Some("old"), &[], Some(t(3600)), t(100));
    assert_eq!(
        during,
        vec![
            SecretDigest {
                sha256: secret_digest("new"),
                expires_at: None
            },
            SecretDigest {
                sha256: secret_digest("old"),
                expires_at: Some(t(3600).as_second())
            },
        ]
    );
    let after = digests("new", Some("old"), &[], Some(t(3600)), t(3600));
    assert_eq!(
        after,
        vec![SecretDigest {
            sha256: secret_digest("new"),
            expires_at: None
        }]
    );
}

#[test]
fn a_remembered_digest_of_a_lost_secret_expires_with_the_grace_period() {
    let remembered = [SecretDigest {
        sha256: secret_digest("lost"),
        expires_at: None,
    }];
    let d = digests("fresh", None, &remembered, Some(t(3600)), t(0));
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[1],
        SecretDigest {
            sha256: secret_digest("lost"),
            expires_at: Some(t(3600).as_second())
        }
    );
    assert_eq!(
        digests("fresh", None, &remembered, Some(t(3600)), t(3600)).len(),
        1
    );
}

#[test]
fn the_current_digest_is_never_given_an_expiry_and_never_duplicated() {
    let remembered = [
        SecretDigest {
            sha256: secret_digest("cur"),
            expires_at: None,
        },
        SecretDigest {
            sha256: secret_digest("old"),
            expires_at: Some(t(50).as_second()),
        },
    ];
    let d = digests("cur", Some("old"), &remembered, Some(t(3600)), t(10));
    assert_eq!(
        d,
        vec![
            SecretDigest {
                sha256: secret_digest("cur"),
                expires_at: None
            },
            SecretDigest {
                sha256: secret_digest("old"),
                expires_at: Some(t(3600).as_second())
            },
        ]
    );
}
