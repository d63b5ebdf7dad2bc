//! Round 2: each claim's listener (and its target group, when an earlier run made it) made,
//! found or repaired, all at once.

use futures::future::join_all;

use super::fingerprint::listener_half;
use super::plan::Plan;
use super::run::Run;
use super::wiring::{Build, Wired, Wiring};
use super::{Error, Reconciler, Result};

impl Reconciler {
    /// Makes or repairs the listener of each of `wirings` as `plan` says.
    pub(super) async fn make_listeners(
        &self,
        run: &Run<'_>,
        plan: &Plan<'_>,
        wirings: Vec<Wiring>,
    ) -> Result<Vec<Wired>> {
        // Whether each claim's NLB balances across zones (a group following it needs no
        // attribute of its own): read with the claims once a minute, fresh after a claim.
        self.fresh_view(run.pool).await?;
        join_all(wirings.into_iter().map(|wiring| {
            let build = plan.listener(&wiring.claim.key).map(|l| Build {
                group: self.cross_zone_for(
                    l.group.clone(),
                    run.pool,
                    std::slice::from_ref(&wiring.claim.nlb_arn),
                ),
                tls: l.tls.clone(),
                changed: wiring.claim.applied.as_deref().map(listener_half)
                    != Some(listener_half(&l.made_from)),
            });
            async move {
                match build {
                    Some(build) => self.wire(wiring, &build).await,
                    None => Err(Error::Conflict(format!(
                        "no listener spec for claim {}",
                        wiring.claim.key
                    ))),
                }
            }
        }))
        .await
        .into_iter()
        .collect()
    }
}
