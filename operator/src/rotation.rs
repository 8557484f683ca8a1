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

/// What the Secret step read for a confidential client whose Secret the operator generates.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    /// `spec.secret.rotation`.
    pub rotation: Option<&'a gatehouse_crds::Rotation>,
    /// The current secret the Secret holds (see [`crate::secret::current`]); `None` without a Secret.
    pub current: Option<&'a str>,
    /// The Secret's previous-client-secret value.
    pub previous: Option<&'a str>,
    /// The Secret's rotated-at annotation.
    pub rotated_at: Option<Timestamp>,
    /// The Secret's rotate-handled annotation: the rotate value its current secret answers.
    pub handled: Option<&'a str>,
    /// The OAuthClient's `gatehouse.dev/rotate` annotation.
    pub annotation: Option<&'a str>,
    /// The digests registered last time (remembered on the OAuthClient).
    pub remembered: &'a [SecretDigest],
}

/// The outcome of [`decide`]: what the Secret holds from now on, and what to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The rotation timing.
    pub plan: Plan,
    /// The current secret: the one the Secret held, or a new one.
    pub secret: String,
    /// The secret being rotated out, kept in the Secret during the grace period.
    pub previous: Option<String>,
    /// The rotate annotation value the current secret answers.
    pub rotate_handled: Option<String>,
    /// The digests to register (see [`digests`]).
    pub digests: Vec<SecretDigest>,
}

/// Decides the Secret step of a generated secret at `now`: whether to rotate (see [`plan`]), which
/// secrets the Secret keeps and which digests are registered. `fresh` is called for a new secret only.
/// Fails on a rotation period or grace period that is not a duration.
pub fn decide(
    observed: &Observed<'_>,
    now: Timestamp,
    fresh: impl FnOnce() -> String,
) -> gatehouse_crds::Result<Decision> {
    let period = observed.rotation.map(|r| signed(&r.period)).transpose()?;
    let grace = observed
        .rotation
        .and_then(|r| r.grace_period.as_ref())
        .map(signed)
        .transpose()?
        .unwrap_or(DEFAULT_GRACE);
    let input = Input {
        period,
        grace,
        secret_exists: observed.current.is_some(),
        rotated_at: observed.rotated_at,
        registered_before: !observed.remembered.is_empty(),
        annotation: observed.annotation,
        handled_annotation: observed.handled,
    };
    let plan = plan(&input, now);
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let (secret, previous, rotate_handled) = match (plan.rotate, observed.current) {
        (None, Some(current)) => {
            let previous = in_grace(&plan, now).then(|| owned(observed.previous)).flatten();
            (current.to_owned(), previous, owned(observed.handled))
        }
        (Some(trigger), current) => {
            let previous = match trigger {
                Trigger::Scheduled | Trigger::Annotation => owned(current),
                Trigger::Initial | Trigger::SecretLost => None,
            };
            (fresh(), previous, owned(observed.annotation.or(observed.handled)))
        }
        // plan() rotates whenever there is no current secret.
        (None, None) => (fresh(), None, owned(observed.annotation)),
    };
    let digests = digests(
        &secret,
        previous.as_deref(),
        observed.remembered,
        plan.grace_until,
        now,
    );
    Ok(Decision {
        plan,
        secret,
        previous,
        rotate_handled,
        digests,
    })
}

/// A duration from the spec as a [`SignedDuration`].
pub fn signed(d: &gatehouse_crds::Duration) -> gatehouse_crds::Result<SignedDuration> {
    let secs = d.as_secs()?;
    let secs = i64::try_from(secs).map_err(|_| gatehouse_crds::Error::InvalidDuration(d.0.clone()))?;
    Ok(SignedDuration::from_secs(secs))
}

#[cfg(test)]
mod tests;
