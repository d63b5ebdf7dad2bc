//! A Service's listener options in AWS: checked before anything is made (the NLB it names,
//! its certificates and security policy), then given to each target group and listener as
//! they are made, and brought back in place when they drift or the Service changes them.

use super::{Reconciler, Result};
use crate::contract::annotations::{self, AllocationRequest, AnnotationError};
use crate::contract::listener_options::{SSL_CERT, SSL_POLICY, TlsListener};
use crate::model::claims::Claim;
use crate::model::elb::{EnsuredTargetGroup, ListenerInfo, TargetGroupSpec};
use crate::model::pool::{MANAGED_NLB_PREFIX, NlbPool};

impl Reconciler {
    /// What must hold before a Service's listeners are made or changed, checked against AWS:
    /// the NLB it names is one of its pool's, its certificates are issued ones of this account
    /// and region, its security policy exists. Each failure names its annotation; the caller
    /// rejects the Service with it, having made nothing.
    pub(super) async fn preflight(
        &self,
        pool: &NlbPool,
        request: &AllocationRequest,
    ) -> Result<std::result::Result<(), AnnotationError>> {
        if let Some(name) = &request.nlb
            && self.named_nlb(pool, request).is_none()
            && self.refresh_members(pool).await?.nlb_named(name).is_none()
        {
            let made = pool
                .managed()
                .map(|_| format!(" or one it made ({MANAGED_NLB_PREFIX}...)"))
                .unwrap_or_default();
            return Ok(Err(AnnotationError {
                key: annotations::NLB,
                problem: format!(
                    "pool {} has no NLB named {name:?}: name one of its pre-made NLBs{made} \
                     as it exists",
                    pool.name()
                ),
            }));
        }
        let Some(tls) = &request.options.tls else {
            return Ok(Ok(()));
        };
        // ACM certificates are regional: a listener serves those of its NLB's region and
        // account (and IAM lets the functions read only those).
        let members = self.with_cached_members(pool);
        let home = members
            .nlb_arns()
            .first()
            .and_then(|arn| region_and_account(arn));
        for arn in &tls.certificates {
            let here = region_and_account(arn);
            if let (Some((region, account)), Some(here)) = (home, here)
                && here != (region, account)
            {
                return Ok(Err(AnnotationError {
                    key: SSL_CERT,
                    problem: format!(
                        "certificate {arn} is of region {} and account {}; the pool's NLBs take \
                         certificates of region {region} and account {account}",
                        here.0, here.1
                    ),
                }));
            }
        }
        if let Some(lookup) = &self.certificates {
            for arn in &tls.certificates {
                let key = format!("certificate {arn}");
                if self.checked.recently(&key) {
                    continue;
                }
                let problem = match lookup.describe(arn).await? {
                    None => "does not exist in this account and region (or the functions may \
                             not read it)"
                        .to_owned(),
                    Some(c) if !c.is_usable() => format!("is {} (it must be ISSUED)", c.status),
                    Some(_) => {
                        self.checked.note(key);
                        continue;
                    }
                };
                return Ok(Err(AnnotationError {
                    key: SSL_CERT,
                    problem: format!("certificate {arn} {problem}"),
                }));
            }
        }
        let key = format!("policy {}", tls.policy);
        if self.checked.recently(&key) {
            return Ok(Ok(()));
        }
        if self.elb.ssl_policy_exists(&tls.policy).await? {
            self.checked.note(key);
        } else {
            return Ok(Err(AnnotationError {
                key: SSL_POLICY,
                problem: format!(
                    "{} is not an ELBv2 security policy (aws elbv2 describe-ssl-policies lists them)",
                    tls.policy
                ),
            }));
        }
        Ok(Ok(()))
    }

    /// The ARN of the NLB the Service names, among the pool's members as last read.
    pub(super) fn named_nlb(&self, pool: &NlbPool, request: &AllocationRequest) -> Option<String> {
        let name = request.nlb.as_deref()?;
        self.with_cached_members(pool)
            .nlb_named(name)
            .map(str::to_owned)
    }

    /// `spec` with cross-zone load balancing resolved: as the Service asks, else as `pool`
    /// says; a group whose NLB (any of `nlbs`, where it may go) is known to have that value
    /// follows it and needs no attribute of its own.
    pub(super) fn cross_zone_for(
        &self,
        mut spec: TargetGroupSpec,
        pool: &NlbPool,
        nlbs: &[String],
    ) -> TargetGroupSpec {
        spec.attributes = spec
            .attributes
            .with_cross_zone(pool.cross_zone(), |on| self.view.nlbs_cross_zone(nlbs, on));
        spec
    }

    /// Makes a target group (or finds the one an earlier attempt made) and gives a new one the
    /// attributes asked for; a group that cannot have them goes again, so nothing is left
    /// half-made. A found one is brought in line by [`Reconciler::align_attributes`].
    pub(super) async fn make_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> Result<EnsuredTargetGroup> {
        let group = self.elb.ensure_target_group(spec).await?;
        if group.created {
            let changes = spec.attributes.on_creation(spec.protocol);
            if !changes.is_empty()
                && let Err(e) = self
                    .elb
                    .set_target_group_attributes(&group.arn, &changes)
                    .await
            {
                self.elb.delete_target_group(&group.arn).await?;
                return Err(e.into());
            }
        }
        Ok(group)
    }

    /// Sets the attributes of an existing target group that differ from what is asked for.
    pub(super) async fn align_attributes(&self, arn: &str, spec: &TargetGroupSpec) -> Result<()> {
        let have = self.elb.target_group_attributes(arn).await?;
        let changes = spec.attributes.differences(&have, spec.protocol);
        if !changes.is_empty() {
            self.elb.set_target_group_attributes(arn, &changes).await?;
        }
        Ok(())
    }

    /// Brings an existing listener of `claim` in line, in place: its protocol and TLS settings
    /// and its target group in one ModifyListener when any differs, then its additional
    /// certificates (read only when it has or may have some).
    pub(super) async fn align_listener(
        &self,
        claim: &Claim,
        found: &ListenerInfo,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
        changed: bool,
    ) -> Result<()> {
        // Additional certificates go before the listener leaves TLS (AWS keeps them on TLS
        // listeners only).
        if tls.is_none() && found.tls.is_some() && changed {
            self.align_certificates(&found.arn, &[]).await?;
        }
        let settings_differ = match (tls, &found.tls) {
            (Some(want), Some(have)) => !have.matches(want),
            (None, None) => found.protocol != Some(claim.protocol),
            _ => true,
        };
        if settings_differ || found.target_group_arn.as_deref() != Some(target_group_arn) {
            self.elb
                .modify_listener(&found.arn, claim.protocol, tls, target_group_arn)
                .await?;
        }
        if let Some(tls) = tls
            && (!tls.additional.is_empty() || (changed && found.tls.is_some()))
        {
            self.align_certificates(&found.arn, &tls.additional).await?;
        }
        Ok(())
    }

    /// Adds the additional certificates a listener lacks and removes those not asked for.
    pub(super) async fn align_certificates(
        &self,
        listener_arn: &str,
        want: &[String],
    ) -> Result<()> {
        let have = self.elb.listener_certificates(listener_arn).await?;
        let add: Vec<String> = want.iter().filter(|c| !have.contains(c)).cloned().collect();
        let remove: Vec<String> = have.iter().filter(|c| !want.contains(c)).cloned().collect();
        if !add.is_empty() || !remove.is_empty() {
            self.elb
                .set_listener_certificates(listener_arn, &add, &remove)
                .await?;
        }
        Ok(())
    }
}

/// The region and account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
fn region_and_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (_arn, _partition, _service) = (parts.next()?, parts.next()?, parts.next()?);
    Some((parts.next()?, parts.next()?))
}
