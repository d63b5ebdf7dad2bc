//! The sweep's NLBs, one at a time: each NLB's listeners read before its claims (see
//! [`Reconciler::sweep`]), then the listeners no claim accounts for deleted, the claims of
//! Services that are gone released, and the live Services whose claims must move found.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};

use super::sweep_limits::{DeletionBudget, SweepLimits};
use super::sweep_report::SweepReport;
use super::{Reconciler, Result};
use crate::contract::event::ServiceKey;
use crate::contract::service_model::ServiceState;
use crate::model::claims::PortHolder;
use crate::model::cluster::Cluster;
use crate::model::elb::{
    ElbErrorKind, ListenerInfo, TAG_POD, TAG_SERVICE_UID, target_group_name, target_group_name_in,
};
use crate::model::pool::NlbPool;

/// What one NLB holds: its listeners (with their tags) read before its claims.
pub(super) struct NlbSeen {
    /// The NLB.
    pub(super) nlb: String,
    /// Its listeners; none when it is gone.
    listeners: Vec<ListenerInfo>,
    /// ELBv2 says it does not exist.
    gone: bool,
    tags: HashMap<String, HashMap<String, String>>,
    /// Its claims.
    pub(super) holders: Vec<PortHolder>,
}

/// What sweeping one NLB found.
pub(super) struct NlbSwept {
    /// Ports claimed on it.
    pub(super) holders: usize,
    /// Live Services whose claims on it must move, or whose listener must be made again.
    pub(super) misplaced: Vec<ServiceState>,
}

/// Whether `l` forwards to the target group the holder of its port makes: a name no one else
/// makes (a hash of the owner and listener), so the listener is the holder's.
fn forwards_to_its_group(l: &ListenerInfo, h: &PortHolder) -> bool {
    l.target_group_arn
        .as_deref()
        .and_then(target_group_name_in)
        .is_some_and(|name| name == target_group_name(&h.owner, &h.key))
}

impl Reconciler {
    /// Reads `nlbs`, [`SweepLimits::concurrency`] at once, in their order; those of `pool`
    /// have their listing recorded for allocations.
    pub(super) async fn see_nlbs(
        &self,
        nlbs: &[String],
        pool: Option<&NlbPool>,
        limits: SweepLimits,
    ) -> Result<Vec<NlbSeen>> {
        futures::stream::iter(nlbs)
            .map(|nlb| self.see_nlb(nlb.as_str(), pool.map(|p| p.is_made(nlb))))
            .buffered(limits.concurrency.max(1))
            .try_collect()
            .await
    }

    /// One NLB's listeners and their tags, then its claims (see the module docs). An NLB of
    /// the pools (`made`: whether the pool function made it) has its listing recorded: the
    /// ports other listeners hold and its cross-zone setting.
    async fn see_nlb(&self, nlb: &str, made: Option<bool>) -> Result<NlbSeen> {
        let (listed, cross_zone) = tokio::join!(self.elb.listeners_of(nlb), async {
            match made {
                Some(_) => self.elb.nlb_cross_zone(nlb).await.map(Some),
                None => Ok(None),
            }
        });
        let (listeners, gone) = match listed {
            Ok(listeners) => (listeners, false),
            Err(e) if e.kind == ElbErrorKind::NlbNotFound => (vec![], true),
            Err(e) => return Err(e.into()),
        };
        let holders = self.store.port_holders(nlb).await?;
        match (cross_zone, made) {
            (Ok(Some(cross_zone)), Some(made)) if !gone => {
                self.record_listing(nlb, &listeners, &holders, cross_zone, made)
                    .await?;
            }
            (Err(e), _) if !gone && e.kind != ElbErrorKind::NlbNotFound => return Err(e.into()),
            _ => {}
        }
        // Tags only of listeners that do not forward to their port holder's own target group
        // (named from its owner and listener): leftovers, foreign or repointed listeners.
        let by_port: HashMap<u16, &PortHolder> = holders.iter().map(|h| (h.port, h)).collect();
        let arns: Vec<String> = listeners
            .iter()
            .filter(|l| {
                !by_port
                    .get(&l.port)
                    .is_some_and(|h| forwards_to_its_group(l, h))
            })
            .map(|l| l.arn.clone())
            .collect();
        let tags = match arns.is_empty() {
            true => HashMap::new(),
            false => self.elb.tags_of(&arns).await?,
        };
        Ok(NlbSeen {
            nlb: nlb.to_owned(),
            listeners,
            gone,
            tags,
            holders,
        })
    }

    /// Leaked listeners and orphan claims of one NLB of `pool` (`None`: out of the pools), and
    /// the live Services whose claims on it must move (it is gone or out of the pools, or their
    /// port is out of the range) or whose listener is gone.
    pub(super) async fn sweep_nlb(
        &self,
        cluster: &dyn Cluster,
        seen: NlbSeen,
        pool: Option<&NlbPool>,
        services: &BTreeMap<String, ServiceState>,
        (budget, report): (&mut DeletionBudget, &mut SweepReport),
    ) -> Result<NlbSwept> {
        let NlbSeen {
            nlb,
            listeners,
            gone,
            tags,
            holders,
        } = seen;
        if gone {
            tracing::warn!(
                nlb,
                "an NLB of the pools does not exist; moving its Services"
            );
            report.nlbs_missing.push(nlb.clone());
        }
        let by_port: HashMap<u16, &PortHolder> = holders.iter().map(|h| (h.port, h)).collect();
        for l in &listeners {
            if by_port
                .get(&l.port)
                .is_some_and(|h| forwards_to_its_group(l, h))
            {
                continue; // The holder's own.
            }
            let Some(t) = tags.get(&l.arn).filter(|t| self.is_ours(t)) else {
                continue;
            };
            // A port another cluster sharing the pool now holds (a listener handed over, not
            // yet tagged as its): that cluster's functions finish it.
            if by_port
                .get(&l.port)
                .is_some_and(|h| h.owner.key.cluster != self.cluster_name)
            {
                continue;
            }
            let claimed_by_owner = by_port.get(&l.port).is_some_and(|h| {
                Some(&h.owner.uid) == t.get(TAG_SERVICE_UID)
                    && h.owner.pod.as_ref() == t.get(TAG_POD)
            });
            if !claimed_by_owner && budget.take(1) {
                self.delete_leaked_listener(l, report).await?;
            }
        }
        let mut owners: BTreeMap<&str, &PortHolder> = BTreeMap::new();
        for h in &holders {
            owners.entry(h.owner.uid.as_str()).or_insert(h);
        }
        // A claim older than the grace whose port has no listener lost it behind the system's
        // back (events trust what they made): its Service is reconciled in this run. A younger
        // claim's listener may still be in the making.
        let listener_ports: HashSet<u16> = listeners.iter().map(|l| l.port).collect();
        let settled_before = crate::model::claims::now_epoch()
            - i64::try_from(self.claim_grace.as_secs()).unwrap_or(i64::MAX);
        let misplaced_uid = |uid: &str| {
            gone || holders.iter().filter(|h| h.owner.uid == uid).any(|h| {
                !pool.is_some_and(|p| p.takes_port(h.port))
                    || (!listener_ports.contains(&h.port) && h.claimed_at < settled_before)
            })
        };
        let mut misplaced = Vec::new();
        for (uid, h) in owners {
            // The same cluster's Services only: a pool may be shared with another cluster.
            if h.owner.key.cluster != self.cluster_name {
                continue;
            }
            let live = self
                .live_service(
                    cluster,
                    services,
                    &h.owner.key.namespace,
                    &h.owner.key.name,
                    uid,
                )
                .await?;
            match live {
                None => {
                    report.orphan_claims_released += self
                        .release_orphan(cluster, uid, &h.owner.key, budget)
                        .await?;
                }
                Some(service) if misplaced_uid(uid) => misplaced.push(service),
                Some(_) => {}
            }
        }
        Ok(NlbSwept {
            holders: holders.len(),
            misplaced,
        })
    }

    /// Releases the claims of `uid` recorded for `key` (a Service that is gone) if the budget
    /// covers them all; returns how many were released.
    async fn release_orphan(
        &self,
        cluster: &dyn Cluster,
        uid: &str,
        key: &ServiceKey,
        budget: &mut DeletionBudget,
    ) -> Result<usize> {
        // Only those recorded for this Service, as `release_uid` does.
        let mut claims = self.store.claims_of(uid).await?;
        claims.retain(|c| &c.owner.key == key);
        let count = claims.len();
        // Offered under a claim key: kept for the next Service naming it, for a while.
        if self.awaits_taker(&claims).await? {
            return Ok(0);
        }
        if count == 0 || !budget.take(count) {
            return Ok(0);
        }
        match self.release_uid(cluster, uid, key).await {
            Ok(n) => Ok(n),
            // Another run holds them (a deletion being handled): it releases them.
            Err(super::Error::Busy { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The Service `namespace/name` if it exists with `uid`: from the list read at the start,
    /// or, when the list does not show it (it may be newer than the list), read afresh.
    pub(super) async fn live_service(
        &self,
        cluster: &dyn Cluster,
        services: &BTreeMap<String, ServiceState>,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<ServiceState>> {
        if let Some(s) = services
            .get(&format!("{namespace}/{name}"))
            .filter(|s| s.uid == uid)
        {
            return Ok(Some(s.clone()));
        }
        Ok(cluster
            .service(namespace, name)
            .await?
            .filter(|s| s.uid == uid))
    }

    pub(super) fn is_ours(&self, tags: &HashMap<String, String>) -> bool {
        crate::model::elb::owned_by_cluster(tags, &self.cluster_name)
    }

    async fn delete_leaked_listener(
        &self,
        l: &ListenerInfo,
        report: &mut SweepReport,
    ) -> Result<()> {
        tracing::warn!(listener = %l.arn, port = l.port, "deleting a listener no claim accounts for");
        self.elb.delete_listener(&l.arn).await?;
        report.leaked_listeners_deleted += 1;
        Ok(())
    }
}
