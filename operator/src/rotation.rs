//! Secret rotation timing and the digests a client registers. Pure: every function takes `now`.
//!
//! The generated Secret carries its own rotation state in annotations (when the secret was generated,
//! which `gatehouse.dev/rotate` value was acted on), so that the state changes atomically with the
//! secret itself. The digests last registered are remembered on the OAuthClient, so that a deleted
//! Secret's old secret keeps working through a grace period.

use std::time::Duration as StdDuration;

use gatehouse_crds::admin::{SecretDigest, secret_digest};
use jiff::{SignedDuration, Timestamp};

/// Grace period when the spec names none: one hour.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// Why a new secret is generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The client never had a secret.
    Initial,
    /// `spec.secret.rotation.period` elapsed.
    Scheduled,
    /// The `gatehouse.dev/rotate` annotation has a new value.
    Annotation,
    /// The generated Secret was deleted although a secret had been registered.
    SecretLost,
}

/// What the reconcile knows about a client's secret.
#[derive(Clone, Debug, Default)]
pub struct Input<'a> {
    /// `spec.secret.rotation.period`.
    pub period: Option<SignedDuration>,
    /// `spec.secret.rotation.gracePeriod`, or [`DEFAULT_GRACE`].
    pub grace: SignedDuration,
    /// Whether the Secret exists and holds a current secret.
    pub secret_exists: bool,
    /// When the current secret was generated (from the Secret's annotation).
    pub rotated_at: Option<Timestamp>,
    /// Whether digests were registered before (remembered on the OAuthClient).
    pub registered_before: bool,
    /// The client's `gatehouse.dev/rotate` annotation.
    pub annotation: Option<&'a str>,
    /// The annotation value the current secret was generated for.
    pub handled_annotation: Option<&'a str>,
}

/// The outcome of [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Generate a new secret now, and why.
    pub rotate: Option<Trigger>,
    /// When the secret in force after this plan was generated.
    pub rotated_at: Timestamp,
    /// Until when the secret it replaced keeps working (absent for a first secret).
    pub grace_until: Option<Timestamp>,
    /// When the next scheduled rotation is due.
    pub next_rotation_at: Option<Timestamp>,
}

/// Decides whether to rotate now and when the next rotation and grace deadlines fall.
pub fn plan(input: &Input<'_>, now: Timestamp) -> Plan {
    let annotation_changed = input.annotation.is_some() && input.annotation != input.handled_annotation;
    let rotate = if !input.secret_exists {
        Some(if input.registered_before {
            Trigger::SecretLost
        } else {
            Trigger::Initial
        })
    } else if annotation_changed {
        Some(Trigger::Annotation)
    } else {
        match (input.period, input.rotated_at) {
            (Some(period), Some(at)) if at.saturating_add(period).is_ok_and(|due| due <= now) => {
                Some(Trigger::Scheduled)
            }
            _ => None,
        }
    };
    let rotated_at = match rotate {
        Some(_) => now,
        None => input.rotated_at.unwrap_or(now),
    };
    let grace_until = match rotate {
        Some(Trigger::Initial) => None,
        Some(_) => rotated_at.saturating_add(input.grace).ok(),
        // Without a rotation the grace of the last one (if any) still runs from its time.
        None => input
            .rotated_at
            .and_then(|at| at.saturating_add(input.grace).ok()),
    };
    let next_rotation_at = input.period.and_then(|p| rotated_at.saturating_add(p).ok());
    Plan {
        rotate,
        rotated_at,
        grace_until,
        next_rotation_at,
    }
}

/// How long to wait before the next reconcile: the resync interval, or sooner when a rotation or the
/// end of a grace period is due. Never less than one second.
pub fn requeue_after(plan: &Plan, now: Timestamp, resync: StdDuration) -> StdDuration {
    let mut wait = resync;
    for deadline in [plan.next_rotation_at, plan.grace_until].into_iter().flatten() {
        if deadline > now {
            let until = StdDuration::try_from(deadline.duration_since(now)).unwrap_or(resync);
            // Land just after the deadline, not just before it.
            wait = wait.min(until + StdDuration::from_millis(200));
        }
    }
    wait.max(StdDuration::from_secs(1))
}

/// Whether the previous secret still belongs in the Secret.
pub fn in_grace(plan: &Plan, now: Timestamp) -> bool {
    plan.grace_until.is_some_and(|until| until > now)
}

/// The digests to register: the current secret without expiry, then every other secret that is still
/// within its grace period. `previous` is the plaintext being rotated out, if the Secret holds it;
/// `remembered` are the digests registered last time. A remembered digest without expiry that is no
/// longer current was replaced (for instance because its Secret was deleted) and expires at
/// `grace_until`.
pub fn digests(
    current: &str,
    previous: Option<&str>,
    remembered: &[SecretDigest],
    grace_until: Option<Timestamp>,
    now: Timestamp,
) -> Vec<SecretDigest> {
    let current = secret_digest(current);
    let mut out = vec![SecretDigest {
        sha256: current.clone(),
        expires_at: None,
    }];
    let previous = previous.map(|p| SecretDigest {
        sha256: secret_digest(p),
        expires_at: None,
    });
    for candidate in previous.iter().chain(remembered) {
        if candidate.sha256 == current || out.iter().any(|d| d.sha256 == candidate.sha256) {
            continue;
        }
        let expires = candidate.expires_at.or(grace_until.map(Timestamp::as_second));
        if let Some(expires) = expires
            && expires > now.as_second()
        {
            out.push(SecretDigest {
                sha256: candidate.sha256.clone(),
                expires_at: Some(expires),
            });
        }
    }
    out
}

/// A duration from the spec as a [`SignedDuration`].
pub fn signed(d: &gatehouse_crds::Duration) -> gatehouse_crds::Result<SignedDuration> {
    let secs = d.as_secs()?;
    let secs = i64::try_from(secs).map_err(|_| gatehouse_crds::Error::InvalidDuration(d.0.clone()))?;
    Ok(SignedDuration::from_secs(secs))
}

#[cfg(test)]
mod tests {
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
}
