//! Leader election on the `coordination.k8s.io/v1` Lease `gatehouse-operator` in the operator's
//! namespace. The holder renews it; a standby takes it over once `renewTime + leaseDurationSeconds` has
//! passed. Every write carries the resourceVersion it read, so two replicas racing for an expired Lease
//! cannot both win: the API server answers the loser with a conflict.

use std::{future::Future, sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, api::PostParams};
use tracing::{info, warn};

use crate::{Config, Error, Result, clock::SharedClock, metrics::Metrics};

/// Name of the Lease.
pub const LEASE_NAME: &str = "gatehouse-operator";

/// What a replica should do with the Lease it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease exists: create it.
    Create,
    /// This replica holds it: renew it.
    Renew,
    /// Nobody holds it, or its holder let it expire: take it over.
    TakeOver,
    /// Another replica holds a valid Lease: wait.
    Wait,
}

/// Decides from the Lease as read at `now`. Pure.
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else { return Decision::Create };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == me => return Decision::Renew,
        None | Some("") => return Decision::TakeOver,
        Some(_) => {}
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match renewed.and_then(|r| r.checked_add(duration).ok()) {
        Some(expiry) if expiry > now => Decision::Wait,
        _ => Decision::TakeOver,
    }
}

/// This replica's identity: the pod name (or hostname) plus a random suffix, so that a restarted pod
/// with the same name is a new holder.
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "gatehouse-operator".to_owned());
    format!("{base}-{}", hex::encode(gatehouse_crds::random::bytes::<4>()))
}

struct Elector {
    api: Api<Lease>,
    me: String,
    duration_secs: i32,
    clock: SharedClock,
}

impl Elector {
    /// One attempt: returns whether this replica holds the Lease afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool> {
        let now = self.clock.now();
        let current = self.api.get_opt(LEASE_NAME).await.map_err(Error::Lease)?;
        let decision = decide(current.as_ref().and_then(|l| l.spec.as_ref()), &self.me, now);
        let result = match (decision, current) {
            (Decision::Wait, _) => return Ok(false),
            (Decision::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.to_owned()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(None, now, 0)),
                };
                self.api.create(&PostParams::default(), &lease).await.map(drop)
            }
            (decision, Some(mut lease)) => {
                let old = lease.spec.take();
                let transitions = old.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
                let (acquired, transitions) = if decision == Decision::Renew {
                    (old.as_ref().and_then(|s| s.acquire_time.clone()), transitions)
                } else {
                    (None, transitions + 1)
                };
                lease.spec = Some(self.spec(acquired, now, transitions));
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
                    .map(drop)
            }
        };
        match result {
            Ok(()) => Ok(true),
            // Someone else wrote the Lease between our read and our write.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::Lease(e)),
        }
    }

    fn spec(&self, acquired: Option<MicroTime>, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.me.clone()),
            lease_duration_seconds: Some(self.duration_secs),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Gives the Lease up on a clean shutdown, so that a standby need not wait for it to expire.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(LEASE_NAME).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.me.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(e) = self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
            warn!(error = %e, "could not release the leader lease");
        }
    }
}

/// Waits for the Lease, then runs `work` while renewing it. Returns when `shutdown` resolves (releasing
/// the Lease), when `work` ends, or with [`Error::LostLeadership`] when renewal fails for longer than
/// two thirds of the lease duration or another replica took the Lease.
pub async fn lead(
    client: kube::Client,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Clone + Send,
    work: impl Future<Output = Result<()>>,
) -> Result<()> {
    let duration = config.lease_duration.max(Duration::from_secs(1));
    let elector = Elector {
        api: Api::namespaced(client, &config.namespace),
        me: config.identity.clone(),
        duration_secs: i32::try_from(duration.as_secs()).unwrap_or(15).max(1),
        clock,
    };
    let retry = duration / 3;
    info!(identity = %elector.me, "waiting for the leader lease");
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "leader election attempt failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = shutdown.clone() => return Ok(()),
        }
    }
    info!(identity = %elector.me, "acquired the leader lease");
    metrics.set_leader(true);
    let renew = async {
        let deadline = duration * 2 / 3;
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(retry).await;
            match elector.try_acquire_or_renew().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => return Error::LostLeadership,
                Err(e) => warn!(error = %e, "renewing the leader lease failed"),
            }
            if last_renewed.elapsed() > deadline {
                return Error::LostLeadership;
            }
        }
    };
    let result = tokio::select! {
        r = work => r,
        e = renew => Err(e),
        () = shutdown => {
            elector.release().await;
            Ok(())
        }
    };
    metrics.set_leader(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(t(renewed))),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created() {
        assert_eq!(decide(None, "a", t(0)), Decision::Create);
    }

    #[test]
    fn the_holder_renews_its_own_lease() {
        assert_eq!(decide(Some(&held_by("a", 0)), "a", t(100)), Decision::Renew);
    }

    #[test]
    fn a_standby_waits_until_the_lease_expires_then_takes_over() {
        let lease = held_by("a", 0);
        assert_eq!(decide(Some(&lease), "b", t(14)), Decision::Wait);
        assert_eq!(decide(Some(&lease), "b", t(15)), Decision::TakeOver);
    }

    #[test]
    fn a_released_lease_is_taken_over_at_once() {
        let lease = LeaseSpec {
            holder_identity: None,
            ..held_by("a", 0)
        };
        assert_eq!(decide(Some(&lease), "b", t(1)), Decision::TakeOver);
    }
}
