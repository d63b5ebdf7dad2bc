//! The sweep: what events alone cannot promise. It releases claims whose Service is gone,
//! deletes the project's listeners and target groups that no claim accounts for, reconciles a
//! bounded share of the Services each run (which retries Pending ones, takes over unfinished
//! claims and repairs drift), and reports pool use.
//!
//! It only ever deletes what is provably unowned, and it reads listeners before claims: a claim
//! is always written before its listener, so a listener seen without a claim read afterwards
//! has none. Runs may overlap each other and the event-driven functions.
//!
//! "Unowned" is only as true as the claims table: an emptied or replaced table, or a rebuilt
//! cluster of the same name, would make every listener look leaked. So a run deletes on
//! absence only when the table's identity is this cluster's and this stack's (see
//! `reconcile::identity`), and at most [`SweepLimits::max_deletions`] times; what it leaves
//! is counted in the report and left to later runs. Releasing the claims of a Service that is
//! gone deletes its listener too, so it counts against the same budget and is blocked alike.
//! A blocked run reconciles no Service either: it reports pool use and what it left.

use std::collections::{BTreeMap, HashSet};

pub use super::sweep_limits::{DEFAULT_MAX_DELETIONS, SweepLimits};
pub use super::sweep_report::{PoolUse, SweepReport};

use super::identity::Ownership;
use super::sweep_groups::SeenClaims;
use super::sweep_limits::DeletionBudget;
use super::sweep_share::key_of;
use super::{Reconciler, Result};
use crate::contract::service_model::ServiceState;
use crate::model::claims::CursorStore;
use crate::model::cluster::Cluster;
use crate::model::pool::NlbPool;

impl Reconciler {
    /// One sweep run; see the module docs. Individual failures are counted, not fatal.
    pub async fn sweep(
        &self,
        cluster: &dyn Cluster,
        cursors: &dyn CursorStore,
        limits: SweepLimits,
    ) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let services: BTreeMap<String, ServiceState> = cluster
            .services_of_interest()
            .await?
            .into_iter()
            .map(|s| (key_of(&s), s))
            .collect();
        let now = crate::model::claims::now_epoch();
        let pending: Vec<&ServiceState> = services
            .values()
            .filter(|s| {
                s.annotations
                    .get(crate::contract::annotations::STATUS)
                    .is_some_and(|st| st.starts_with("Pending"))
            })
            .collect();
        report.services_pending = pending.len();
        report.oldest_pending_seconds = pending
            .iter()
            .filter_map(|s| s.created)
            .min()
            .map_or(0, |created| (now - created).max(0));
        // A table not proven this cluster's gets nothing written but the cursor: no NLB
        // listing either.
        let (mut budget, own) = match self.check_ownership(cluster).await? {
            Ownership::Own => (DeletionBudget::new(limits.max_deletions), true),
            Ownership::Foreign(why) | Ownership::Unproven(why) => {
                report.deletions_blocked = Some(why);
                (DeletionBudget::new(0), false)
            }
        };
        let mut cursor = cursors.load_cursor().await?;
        let mut moving: BTreeMap<String, ServiceState> = BTreeMap::new();
        let mut claimed = SeenClaims::default();
        let mut swept_nlbs: Vec<String> = Vec::new();
        let configured: Vec<NlbPool> = self.pools.pools().cloned().collect();
        for pool in &configured {
            // A managed pool's members as the table lists them now.
            let pool = self.refresh_members(pool).await?;
            let mut used = 0;
            let listed = own.then_some(&pool);
            for seen in self.see_nlbs(pool.nlb_arns(), listed, limits).await? {
                claimed.add(&seen.holders);
                swept_nlbs.push(seen.nlb.clone());
                let swept = self
                    .sweep_nlb(
                        cluster,
                        seen,
                        Some(&pool),
                        &services,
                        (&mut budget, &mut report),
                    )
                    .await?;
                used += swept.holders;
                moving.extend(swept.misplaced.into_iter().map(|s| (key_of(&s), s)));
            }
            report.pools.push(PoolUse {
                pool: pool.name().to_owned(),
                used,
                capacity: pool.capacity() as usize,
            });
        }
        // NLBs taken out of the pools since an earlier run: swept until no claim is left.
        let in_pools: HashSet<String> = swept_nlbs.iter().cloned().collect();
        let retired: Vec<String> = cursor
            .nlbs
            .iter()
            .filter(|n| !in_pools.contains(*n))
            .cloned()
            .collect();
        for seen in self.see_nlbs(&retired, None, limits).await? {
            claimed.add(&seen.holders);
            let nlb = seen.nlb.clone();
            let swept = self
                .sweep_nlb(cluster, seen, None, &services, (&mut budget, &mut report))
                .await?;
            moving.extend(swept.misplaced.into_iter().map(|s| (key_of(&s), s)));
            if swept.holders > 0 {
                swept_nlbs.push(nlb);
            }
        }
        cursor.nlbs = swept_nlbs;
        cursors.save_cursor(&cursor).await?;
        // Reconciling every Service against a table that is not provably theirs would claim
        // new ports for Services that hold listeners: while blocked, the run only reports.
        if report.deletions_blocked.is_none() {
            report.services_moved = moving.len();
            self.reconcile_share(
                cluster,
                &services,
                &moving,
                (cursors, &mut cursor),
                limits,
                &mut report,
            )
            .await?;
        }
        self.sweep_target_groups(
            cluster,
            &services,
            &claimed,
            (cursors, &mut cursor),
            limits,
            (&mut budget, &mut report),
        )
        .await?;
        report.deletions_left = budget.deferred();
        Ok(report)
    }
}
