//! Growing a managed pool: how many NLBs it needs, adding them to the pool's records under the
//! conditional counter (so two growers make one), and making each recorded member (or adopting
//! the NLB an earlier run made for it and did not record).

use super::super::Result;
use super::tend::{Census, PoolReport};
use super::tender::PoolTender;
use crate::model::claims::{NlbState, PoolMember, PoolRecord, RunToken, now_epoch};
use crate::model::elb::{
    ElbErrorKind, NlbSpec, TAG_CLUSTER, TAG_MANAGED, TAG_POOL, TAG_POOL_ID, TAG_POOL_SEQ,
};
use crate::model::pool::{NlbPool, managed_nlb_name};

/// Rounds of read-decide-write when another grower moved the counter first.
const GROW_ATTEMPTS: usize = 3;

/// The quota as the reasons name it.
const QUOTA: &str = "the region's quota of Network Load Balancers (Service Quotas: Elastic \
                     Load Balancing, \"Network Load Balancers per Region\", code L-69A177A2, \
                     50 by default; the stack's NlbQuota)";

/// What AWS's refusal says.
const REFUSED: &str = "AWS refused a new NLB: TooManyLoadBalancers, the account holds as many \
                       Network Load Balancers in this region as its quota allows (Service \
                       Quotas: Elastic Load Balancing, \"Network Load Balancers per Region\", \
                       code L-69A177A2; raise it, then the stack's NlbQuota)";

/// Why a pool that wants `wanted` more NLBs is held back when `exist` of `quota` exist.
fn held_by_quota(exist: usize, quota: u32, wanted: usize) -> String {
    format!(
        "NLB quota reached: the pool needs {wanted} more NLB(s), and {exist} NLBs exist in the \
         region of {quota} allowed by {QUOTA}. Raise the quota (then NlbQuota), or free NLBs"
    )
}

/// How many NLBs `pool` needs beyond what it has and is making: enough for the spare and the
/// waiting Services, and at least `min`; and whether `max` stops it from making them all.
pub(super) fn needed(pool: &NlbPool, record: &PoolRecord, census: &Census) -> (usize, bool) {
    let Some(managed) = pool.managed() else {
        return (0, false);
    };
    let per_nlb = pool.per_nlb().max(1) as usize;
    // Members without an ARN are being made: they count as coming, like provisioning ones.
    let coming = census.count(NlbState::Provisioning);
    let kept = census
        .members
        .iter()
        .filter(|m| m.state() != NlbState::Draining)
        .count();
    let waiting: usize = record.waiting.iter().map(|w| w.listeners as usize).sum();
    let want = managed.spare as usize + waiting;
    let have = census.free as usize + coming * per_nlb;
    let for_room = want.saturating_sub(have).div_ceil(per_nlb);
    let for_min = (managed.min as usize).saturating_sub(kept);
    let wanted = for_room.max(for_min);
    let allowed = (managed.max as usize).saturating_sub(kept);
    (wanted.min(allowed), wanted > allowed)
}

impl PoolTender<'_> {
    /// Adds the NLBs the pool needs to its records and makes them. Returns how many it made.
    /// Within `nlb_quota` (the region's NLBs counted first, under the growth lock, so pools
    /// growing at once in this run share the room left).
    pub(super) async fn grow(
        &self,
        pool: &NlbPool,
        record: &PoolRecord,
        census: &Census,
        nlb_quota: Option<u32>,
        report: &mut PoolReport,
    ) -> Result<usize> {
        let (mut count, at_max) = needed(pool, record, census);
        report.at_max = at_max;
        if report.quota_refused > 0 {
            // AWS refused an NLB for the quota in this run: asking again each poll would be
            // refused too (the next run asks again).
            return Ok(0);
        }
        report.nlb_quota = None;
        if at_max {
            tracing::warn!(
                pool = pool.name(),
                "the managed pool is at its maximum of NLBs"
            );
        }
        if count == 0 {
            return Ok(0);
        }
        let _growing = self.reconciler.members.growth.lock().await;
        if let Some(quota) = nlb_quota {
            let exist = self.fleet.count_nlbs().await?;
            let room = (quota as usize).saturating_sub(exist);
            if room < count {
                let held = held_by_quota(exist, quota, count);
                tracing::warn!(
                    pool = pool.name(),
                    outcome = "NlbQuotaReached",
                    nlbs = exist,
                    quota,
                    wanted = count,
                    "{held}"
                );
                report.nlb_quota = Some(held);
                count = room;
            }
        }
        let mut seq = record.seq;
        // A pool's first grower gives it its id; a concurrent first grower's id may win, and
        // the loser reads it again below.
        let mut pool_id = record
            .id
            .clone()
            .unwrap_or_else(|| RunToken::random().as_str()[..12].to_owned());
        let refused_before = report.quota_refused;
        for _ in 0..GROW_ATTEMPTS {
            if count == 0 {
                return Ok(0);
            }
            let now = now_epoch();
            let members: Vec<PoolMember> = (1..=count as u64)
                .map(|i| PoolMember {
                    seq: seq + i,
                    name: managed_nlb_name(pool.name(), &pool_id, seq + i),
                    arn: None,
                    created_at: now,
                })
                .collect();
            if self
                .reconciler
                .records()?
                .add_members(pool.name(), seq, &pool_id, &members)
                .await?
            {
                let mut made = 0;
                for m in &members {
                    if report.quota_refused > refused_before {
                        // AWS said the region is full: the rest would be refused too.
                        self.reconciler
                            .records()?
                            .remove_member(pool.name(), m.seq, None)
                            .await?;
                        continue;
                    }
                    tracing::info!(pool = pool.name(), nlb = %m.name, "making an NLB for the pool");
                    if self.make_member(pool, &pool_id, m, report).await? {
                        report.made.push(m.name.clone());
                        made += 1;
                    }
                }
                return Ok(made);
            }
            // Another grower added members first: decide again with what it added.
            let fresh = self.reconciler.records()?.pool_record(pool.name()).await?;
            let added = fresh.members.iter().filter(|m| m.seq > seq).count();
            count = count.saturating_sub(added);
            seq = fresh.seq;
            pool_id = fresh.id.unwrap_or(pool_id);
        }
        Ok(0)
    }

    /// Makes (or adopts) every member without an ARN that no live run is making: those this
    /// run's earlier looks left, and those of a run that stopped past the claim grace. Returns
    /// whether any was recorded or dropped.
    pub(super) async fn finish_members(
        &self,
        pool: &NlbPool,
        record: &PoolRecord,
        report: &mut PoolReport,
    ) -> Result<bool> {
        let Some(pool_id) = &record.id else {
            return Ok(false); // no member yet
        };
        let grace = i64::try_from(self.reconciler.claim_grace.as_secs()).unwrap_or(i64::MAX);
        let now = now_epoch();
        let mut changed = false;
        for m in record.members.iter().filter(|m| m.arn.is_none()) {
            if now - m.created_at < grace {
                continue; // its maker may still be at it
            }
            tracing::warn!(pool = pool.name(), nlb = %m.name,
                "an NLB was being made by a run that stopped; finishing it");
            if self.make_member(pool, pool_id, m, report).await? {
                report.adopted.push(m.name.clone());
            }
            changed = true;
        }
        Ok(changed)
    }

    /// Makes member `m` (or finds the NLB of its name an earlier attempt made, proven by its
    /// tags) and records its ARN. A refusal AWS will repeat (a subnet that does not exist, the
    /// regional NLB quota) drops the member, so it does not block growth, and is reported.
    /// Returns whether the member is recorded.
    async fn make_member(
        &self,
        pool: &NlbPool,
        pool_id: &str,
        m: &PoolMember,
        report: &mut PoolReport,
    ) -> Result<bool> {
        let fleet = self.fleet;
        let records = self.reconciler.records()?;
        let arn = match fleet.nlb_named(&m.name).await? {
            Some(found) => found.arn,
            None => match fleet.create_nlb(&self.nlb_spec(pool, pool_id, m)).await {
                Ok(arn) => arn,
                Err(e) if e.kind == ElbErrorKind::TooManyLoadBalancers => {
                    let held = format!("{REFUSED} ({e}); NLB {} was not made", m.name);
                    tracing::warn!(pool = pool.name(), outcome = "TooManyLoadBalancers",
                        nlb = %m.name, "{held}");
                    report.quota_refused += 1;
                    report.nlb_quota = Some(held);
                    records.remove_member(pool.name(), m.seq, None).await?;
                    return Ok(false);
                }
                Err(e) if !e.retryable => {
                    let failure = format!("could not make NLB {}: {e}", m.name);
                    tracing::warn!(pool = pool.name(), "{failure}");
                    report.failures.push(failure);
                    records.remove_member(pool.name(), m.seq, None).await?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            },
        };
        self.reconciler
            .failpoints
            .check(crate::reconcile::failpoint::POOL_AFTER_CREATE)?;
        if let Err(why) = self.prove_made(pool, &arn, pool_id, m.seq).await? {
            // The name is taken by an NLB that is not this member: never adopt it.
            let failure = format!("NLB {} exists but is not this pool's: {why}", m.name);
            tracing::warn!(pool = pool.name(), "{failure}");
            report.failures.push(failure);
            records.remove_member(pool.name(), m.seq, None).await?;
            return Ok(false);
        }
        if records
            .record_member_arn(pool.name(), m.seq, &arn, now_epoch())
            .await?
        {
            return Ok(true);
        }
        // The member went meanwhile, or records another NLB (a concurrent grower's): this one
        // would be recorded nowhere and billed. It is proven this member's above: delete it.
        tracing::warn!(pool = pool.name(), nlb = %arn,
            "a made NLB could not be recorded (its member changed); deleting it");
        fleet.delete_nlb(&arn).await?;
        Ok(false)
    }

    /// What member `m` of `pool` is made from.
    fn nlb_spec(&self, pool: &NlbPool, pool_id: &str, m: &PoolMember) -> NlbSpec {
        let managed = pool.managed();
        let mut tags = vec![
            (TAG_MANAGED.to_owned(), "true".to_owned()),
            (TAG_CLUSTER.to_owned(), self.reconciler.cluster_name.clone()),
            (TAG_POOL.to_owned(), pool.name().to_owned()),
            (TAG_POOL_ID.to_owned(), pool_id.to_owned()),
            (TAG_POOL_SEQ.to_owned(), m.seq.to_string()),
        ];
        if let Some(managed) = managed {
            tags.extend(managed.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        NlbSpec {
            name: m.name.clone(),
            scheme: managed.map_or(crate::model::pool::Scheme::InternetFacing, |x| x.scheme),
            subnets: managed.map(|x| x.subnets.clone()).unwrap_or_default(),
            security_groups: managed
                .map(|x| x.security_groups.clone())
                .unwrap_or_default(),
            ip_address_type: managed.map_or(crate::model::pool::IpAddressType::Ipv4, |x| {
                x.ip_address_type
            }),
            tags,
        }
    }
}
