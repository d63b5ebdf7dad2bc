//! Holding claims for one run: taking them over before acting on them, and letting them go
//! however the run ends, so the next run need not wait out the grace.

use super::{Error, Reconciler, Result};
use crate::contract::event::ServiceKey;
use crate::model::claims::{Claim, HoldError, RunToken, TakeOverError, now_epoch};

/// The claims one run holds (claimed or taken over) and has not released.
pub(super) struct Holding<'t> {
    /// The run.
    pub token: &'t RunToken,
    claims: Vec<Claim>,
}

/// Whether a run now holds the claims it read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Held {
    /// It does; the claims as read now carry its token.
    Yes,
    /// They changed hands or were released since they were read: read them again.
    Reread,
}

/// Whether two claims are the same owner record (a Service's listener, or a pod's).
fn same_record(a: &Claim, b: &Claim) -> bool {
    a.owner.uid == b.owner.uid && a.owner.pod == b.owner.pod && a.key == b.key
}

impl<'t> Holding<'t> {
    /// A run that holds nothing yet.
    pub fn new(token: &'t RunToken) -> Self {
        Self {
            token,
            claims: Vec::new(),
        }
    }

    /// Notes `claims` as held (claimed by this run, or taken over). A held claim forgets what
    /// its listener was made from until [`Holding::made`] says again: a run that fails midway
    /// leaves it unnoted when it lets go, so the next event makes its full pass.
    pub fn add(&mut self, claims: &[Claim]) {
        for c in claims {
            self.claims.retain(|h| !same_record(h, c));
            self.claims.push(Claim {
                applied: None,
                ..c.clone()
            });
        }
    }

    /// Notes what each listener of `made` was made from, for letting go (which writes it).
    pub fn made(&mut self, made: &[(Claim, String)]) {
        for (c, fingerprint) in made {
            if let Some(h) = self.claims.iter_mut().find(|h| same_record(h, c)) {
                h.applied = Some(fingerprint.clone());
            }
        }
    }

    /// Notes `claims` as released: nothing to let go.
    pub fn forget(&mut self, claims: &[Claim]) {
        self.claims
            .retain(|h| !claims.iter().any(|c| same_record(h, c)));
    }

    /// The claims held.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }
}

impl Reconciler {
    pub(super) fn grace_seconds(&self) -> i64 {
        i64::try_from(self.claim_grace.as_secs()).unwrap_or(i64::MAX)
    }

    /// Makes `holding`'s run the holder of every one of `claims` (as read): those another run
    /// holds are taken over, all at once, if their run let them go or has not confirmed its
    /// hold within the grace. A live run's claims make this run [`Error::Busy`].
    pub(super) async fn hold(
        &self,
        holding: &mut Holding<'_>,
        service: &ServiceKey,
        claims: &mut [Claim],
    ) -> Result<Held> {
        let token = holding.token;
        let (now, grace) = (now_epoch(), self.grace_seconds());
        let theirs: Vec<Claim> = claims
            .iter()
            .filter(|c| !c.held_by(token))
            .cloned()
            .collect();
        if let Some(c) = theirs.iter().find(|c| c.held_by_live_run(now, grace)) {
            return Err(busy(service, &c.key, &c.token, now - c.held_at, grace));
        }
        if !theirs.is_empty() {
            // "Older than the grace": confirmed at or before now - grace.
            let stale_before = now.saturating_sub(grace).saturating_add(1);
            match self
                .store
                .take_over(&theirs, token, now, stale_before)
                .await
            {
                Ok(()) => {}
                Err(TakeOverError::Busy {
                    key,
                    token: holder,
                    held_for,
                }) => return Err(busy(service, &key, &holder, held_for, grace)),
                Err(TakeOverError::Gone { .. } | TakeOverError::Changed { .. }) => {
                    return Ok(Held::Reread);
                }
                Err(TakeOverError::Store(e)) => return Err(e.into()),
            }
            tracing::info!(service = %service, run = %token, claims = theirs.len(),
                "took claims over from runs that let them go or stopped");
        }
        for c in claims.iter_mut() {
            c.token = token.as_str().to_owned();
            c.held_at = now;
        }
        holding.add(claims);
        Ok(Held::Yes)
    }

    /// Lets every claim `holding` still holds go. A refusal means this run was overtaken.
    pub(super) async fn let_go(&self, holding: &Holding<'_>) -> Result<(), HoldError> {
        if holding.claims().is_empty() {
            return Ok(());
        }
        self.store.let_go(holding.claims(), holding.token).await
    }
}

fn busy(
    service: &ServiceKey,
    key: &impl std::fmt::Display,
    holder: &str,
    held_for: i64,
    grace: i64,
) -> Error {
    Error::Busy {
        service: service.to_string(),
        reason: format!(
            "listener {key} is held by run {holder}, which confirmed its hold {held_for}s ago; \
             another run is on it (taken over after {grace}s)"
        ),
    }
}
