//! Leader election on a `coordination.k8s.io/v1` Lease, so only one replica forwards.
//!
//! The rules follow client-go's leaderelection: a candidate takes the Lease when it is free
//! or when its record has not changed for `leaseDurationSeconds` as measured by the
//! candidate's own clock (no clock-skew assumptions); the holder renews every
//! `duration / 5` and steps down when it could not renew for `2/3 duration`, which is before
//! any other replica may consider the Lease expired. Writes use the Lease's resourceVersion,
//! so two candidates cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Which Lease, who we are, how long a hold lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// `leaseDurationSeconds`.
    pub duration: Duration,
}

impl LeaseSettings {
    fn renew_interval(&self) -> Duration {
        self.duration / 5
    }

    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("the Lease is held by {0:?}")]
    Lost(Option<String>),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("the API did not answer in time")]
    Timeout,
}

fn holder(spec: Option<&LeaseSpec>) -> Option<&str> {
    spec.and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// Whether `me` may take a Lease whose record was last seen changing at `observed_at`.
pub fn may_acquire(
    spec: Option<&LeaseSpec>,
    me: &str,
    observed_at: Instant,
    now: Instant,
    default_duration: Duration,
) -> bool {
    match holder(spec) {
        None => true,
        Some(h) if h == me => true,
        Some(_) => {
            let secs = spec.and_then(|s| s.lease_duration_seconds).unwrap_or(0);
            let held_for = u64::try_from(secs)
                .ok()
                .filter(|s| *s > 0)
                .map_or(default_duration, Duration::from_secs);
            now.duration_since(observed_at) >= held_for
        }
    }
}

async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, LeaseError>>,
) -> Result<T, LeaseError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(LeaseError::Timeout))
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Runs the election until `release` turns true, then gives the Lease up if held.
/// `leader` says whether this replica holds it.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// Our last written copy while leading (its resourceVersion guards the next renew).
    held: Option<Lease>,
    /// The record last seen and when it was first seen, for the expiry rule.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
}

impl LeaderElector {
    /// An elector on the Lease `settings.name` in `api`'s namespace.
    pub fn new(api: Api<Lease>, settings: LeaseSettings) -> Self {
        Self {
            api,
            settings,
            held: None,
            observed: None,
        }
    }

    /// Campaigns and renews; returns after releasing the Lease once `release` is true.
    pub async fn run(mut self, leader: watch::Sender<bool>, mut release: watch::Receiver<bool>) {
        let mut last_renew: Option<Instant> = None;
        loop {
            if *release.borrow() {
                break;
            }
            let started = Instant::now();
            let mut wait = self.settings.renew_interval();
            match last_renew {
                Some(last) => {
                    let remaining = self
                        .settings
                        .renew_deadline()
                        .saturating_sub(started - last);
                    match bounded(self.call_limit(remaining), self.renew()).await {
                        Ok(()) => last_renew = Some(started),
                        Err(LeaseError::Lost(by)) => {
                            warn!(holder = ?by, "lost the Lease; stopping forwarding");
                            last_renew = None;
                            self.held = None;
                            leader.send_replace(false);
                        }
                        Err(e) if Instant::now() - last >= self.settings.renew_deadline() => {
                            warn!(error = %e, "could not renew the Lease in time; stopping forwarding");
                            last_renew = None;
                            self.held = None;
                            leader.send_replace(false);
                        }
                        Err(e) => {
                            debug!(error = %e, "renewing the Lease failed; retrying");
                            let left = self
                                .settings
                                .renew_deadline()
                                .saturating_sub(Instant::now() - last);
                            // Wake up by the deadline at the latest, to step down in time.
                            wait = wait.min(left).max(Duration::from_millis(50));
                        }
                    }
                }
                None => {
                    match bounded(
                        self.call_limit(self.settings.renew_deadline()),
                        self.try_acquire(),
                    )
                    .await
                    {
                        Ok(true) => {
                            info!(identity = %self.settings.identity, lease = %self.settings.name, "became leader");
                            last_renew = Some(started);
                            leader.send_replace(true);
                        }
                        Ok(false) => {}
                        Err(e) => warn!(error = %e, "could not read or take the Lease"),
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = release.changed() => if changed.is_err() { break },
            }
        }
        if last_renew.is_some() {
            match bounded(
                self.call_limit(self.settings.renew_deadline()),
                self.release(),
            )
            .await
            {
                Ok(()) => info!("released the Lease"),
                Err(e) => warn!(error = %e, "could not release the Lease; it expires by itself"),
            }
        }
        leader.send_replace(false);
    }

    /// A limit for one API call: never past the renew deadline, so a hung call cannot keep
    /// a leader that should have stepped down.
    fn call_limit(&self, remaining: Duration) -> Duration {
        remaining
            .min(self.settings.renew_deadline() / 2)
            .max(Duration::from_millis(100))
    }

    async fn try_acquire(&mut self) -> Result<bool, LeaseError> {
        let me = self.settings.identity.clone();
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.record(None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.held = Some(created);
                    Ok(true)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.as_ref();
        let record = (
            holder(spec).map(str::to_owned),
            spec.and_then(|s| s.renew_time.clone()),
        );
        let observed_at = match &self.observed {
            Some((h, r, at)) if (h, r) == (&record.0, &record.1) => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record.0.clone(), record.1.clone(), at));
                at
            }
        };
        if !may_acquire(
            spec,
            &me,
            observed_at,
            Instant::now(),
            self.settings.duration,
        ) {
            return Ok(false);
        }
        let transitions = spec.and_then(|s| s.lease_transitions).unwrap_or(0);
        let previous = record.0.filter(|h| *h != me);
        let transitions = transitions + i32::from(previous.is_some());
        // Our own record (a restart under the same name) keeps its acquire time.
        let acquired = if holder(spec) == Some(me.as_str()) {
            spec.and_then(|s| s.acquire_time.clone())
        } else {
            None
        };
        lease.spec = Some(self.record(acquired, transitions));
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                if let Some(h) = previous {
                    info!(previous = %h, "took over the Lease");
                }
                self.held = Some(written);
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn record(&self, acquire_time: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: acquire_time.or_else(|| Some(now())),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn renew(&mut self) -> Result<(), LeaseError> {
        let mut lease = match self.held.take() {
            Some(l) => l,
            None => self.api.get(&self.settings.name).await?,
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if holder(Some(spec)) != Some(self.settings.identity.as_str()) {
            return Err(LeaseError::Lost(spec.holder_identity.clone()));
        }
        spec.renew_time = Some(now());
        // On a conflict `held` stays empty, so the next attempt reads the Lease afresh and
        // finds out whether someone else took it.
        let written = self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await?;
        self.held = Some(written);
        Ok(())
    }

    async fn release(&mut self) -> Result<(), LeaseError> {
        let mut lease = match self.held.take() {
            Some(l) => l,
            None => self.api.get(&self.settings.name).await?,
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if holder(Some(spec)) != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        // An empty holder tells the standby it may take over at once.
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(secs),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_free_or_own_lease_may_be_taken_at_once() {
        let t = Instant::now();
        let d = Duration::from_secs(15);
        assert!(may_acquire(None, "a", t, t, d));
        assert!(may_acquire(Some(&spec(None, 15)), "a", t, t, d));
        assert!(may_acquire(Some(&spec(Some(""), 15)), "a", t, t, d));
        assert!(may_acquire(Some(&spec(Some("a"), 15)), "a", t, t, d));
    }

    #[test]
    fn another_holder_keeps_it_until_its_record_is_stale_for_its_duration() {
        let seen = Instant::now();
        let d = Duration::from_secs(15);
        let held = spec(Some("b"), 10);
        assert!(!may_acquire(
            Some(&held),
            "a",
            seen,
            seen + Duration::from_secs(9),
            d
        ));
        assert!(may_acquire(
            Some(&held),
            "a",
            seen,
            seen + Duration::from_secs(10),
            d
        ));
        // No duration in the record: our own applies.
        let bare = spec(Some("b"), 0);
        assert!(!may_acquire(
            Some(&bare),
            "a",
            seen,
            seen + Duration::from_secs(14),
            d
        ));
        assert!(may_acquire(
            Some(&bare),
            "a",
            seen,
            seen + Duration::from_secs(15),
            d
        ));
    }

    #[test]
    fn the_holder_steps_down_before_anyone_may_take_over() {
        let s = LeaseSettings {
            name: "l".into(),
            identity: "a".into(),
            duration: Duration::from_secs(15),
        };
        assert!(s.renew_deadline() < s.duration);
        assert!(s.renew_interval() * 3 <= s.renew_deadline());
    }
}
