//! One listener's resources: its target group and listener, made or found and repaired.

use super::{Error, Reconciler, Result};
use crate::contract::annotations::HealthCheckSpec;
use crate::contract::listener_options::TlsListener;
use crate::model::claims::Claim;
use crate::model::elb::{ElbError, ElbErrorKind, EnsuredTargetGroup, TargetGroupSpec, owned_by};

/// A claim to wire up.
pub(super) struct Wiring {
    /// The claim.
    pub claim: Claim,
    /// The target group made for it in this run, if any.
    pub fresh_tg: Option<EnsuredTargetGroup>,
    /// Claimed in this run: nothing can exist on its port yet.
    pub fresh: bool,
}

impl Wiring {
    /// A claim kept from an earlier run: what exists on its port is looked at.
    pub fn kept(claim: Claim) -> Self {
        Self {
            claim,
            fresh_tg: None,
            fresh: false,
        }
    }
}

/// What one listener and its target group are made with.
pub(super) struct Build {
    /// The target group.
    pub group: TargetGroupSpec,
    /// TLS termination, if the listener terminates TLS.
    pub tls: Option<TlsListener>,
    /// What the listener is made from differs from what its claim notes it was made from
    /// (or the claim notes nothing): settings read only then (target group attributes,
    /// additional certificates) are read.
    pub changed: bool,
}

/// A claim whose target group and listener exist.
pub(super) struct Wired {
    pub claim: Claim,
    pub target_group_arn: String,
    /// The target group was made in this run, so it has no targets yet.
    pub target_group_new: bool,
    pub listener_arn: String,
}

/// Whether a target group's health check differs from what the Service asks for. Settings the
/// Service leaves unset keep whatever AWS chose.
fn health_check_differs(want: &HealthCheckSpec, have: &HealthCheckSpec) -> bool {
    let set_and_differs = |w: Option<i32>, h: Option<i32>| w.is_some() && w != h;
    want.protocol != have.protocol
        || want.port != have.port
        || set_and_differs(want.interval_seconds, have.interval_seconds)
        || set_and_differs(want.timeout_seconds, have.timeout_seconds)
        || set_and_differs(want.healthy_threshold, have.healthy_threshold)
        || set_and_differs(want.unhealthy_threshold, have.unhealthy_threshold)
        || (want.path.is_some() && want.path != have.path)
}

/// AWS's refusals that move a claim (its NLB is full or gone) as [`Error::ListenerRefused`];
/// any other failure as it is.
fn refused_or(claim: &Claim, e: ElbError) -> Error {
    let reason = match e.kind {
        ElbErrorKind::TooManyListeners => format!(
            "NLB {} has as many listeners as its quota allows, counting listeners nlb-port-pool \
             did not make ({})",
            claim.nlb_arn, e.message
        ),
        ElbErrorKind::NlbNotFound => format!(
            "NLB {} does not exist (deleted outside nlb-port-pool); remove it from POOLS",
            claim.nlb_arn
        ),
        _ => return e.into(),
    };
    Error::ListenerRefused {
        claim: Box::new(claim.clone()),
        reason,
        nlb_unusable: true,
    }
}

impl Reconciler {
    /// Makes sure the claim's target group and listener exist and are as specified.
    pub(super) async fn wire(&self, plan: Wiring, build: &Build) -> Result<Wired> {
        let (target_group_arn, target_group_new) = match plan.fresh_tg {
            Some(g) => (g.arn, g.created),
            None => self.verify_target_group(&plan.claim, build).await?,
        };
        let listener_arn = if plan.fresh {
            self.create_listener(&plan.claim, &target_group_arn, build)
                .await?
        } else {
            self.verify_listener(&plan.claim, &target_group_arn, build)
                .await?
        };
        Ok(Wired {
            claim: plan.claim,
            target_group_arn,
            target_group_new,
            listener_arn,
        })
    }

    /// The recorded target group if it still exists (its health check repaired), else the one
    /// of that name, made again if it was deleted.
    async fn verify_target_group(&self, claim: &Claim, build: &Build) -> Result<(String, bool)> {
        let spec = &build.group;
        // Attributes are read when the Service asks for any, or changed what it asks for.
        let check_attributes = build.changed || !spec.attributes.is_aws_default(spec.protocol);
        if let Some(arn) = &claim.target_group_arn
            && let Some(found) = self
                .elb
                .describe_target_groups(std::slice::from_ref(arn))
                .await?
                .pop()
        {
            if health_check_differs(&spec.health_check, &found.health_check) {
                self.elb
                    .modify_health_check(&found.arn, &spec.health_check)
                    .await?;
            }
            if check_attributes {
                self.align_attributes(&found.arn, spec).await?;
            }
            return Ok((found.arn, false));
        }
        let ensured = self.make_target_group(spec).await?;
        if !ensured.created {
            self.elb
                .modify_health_check(&ensured.arn, &spec.health_check)
                .await?;
            self.align_attributes(&ensured.arn, spec).await?;
        }
        Ok((ensured.arn, ensured.created))
    }

    async fn create_listener(
        &self,
        claim: &Claim,
        target_group_arn: &str,
        build: &Build,
    ) -> Result<String> {
        match self.new_listener(claim, target_group_arn, build).await {
            Ok(arn) => Ok(arn),
            // The port is ours by claim; whatever holds it must be looked at.
            Err(Error::Elb(e)) if e.kind == ElbErrorKind::DuplicateListener => {
                self.adopt_listener_on_port(claim, target_group_arn, build)
                    .await
            }
            Err(Error::Elb(e)) => Err(refused_or(claim, e)),
            Err(e) => Err(e),
        }
    }

    /// CreateListener, then the additional certificates of a TLS listener.
    async fn new_listener(
        &self,
        claim: &Claim,
        target_group_arn: &str,
        build: &Build,
    ) -> Result<String> {
        let arn = self
            .elb
            .create_listener(
                &claim.nlb_arn,
                claim.port,
                claim.protocol,
                build.tls.as_ref(),
                target_group_arn,
                &build.group.tags,
            )
            .await?;
        if let Some(tls) = &build.tls
            && !tls.additional.is_empty()
        {
            self.elb
                .set_listener_certificates(&arn, &tls.additional, &[])
                .await?;
        }
        Ok(arn)
    }

    /// The recorded listener if it still exists (pointed at the right group), else the one on
    /// the claimed port if it is this Service's, else a new one.
    async fn verify_listener(
        &self,
        claim: &Claim,
        target_group_arn: &str,
        build: &Build,
    ) -> Result<String> {
        if let Some(arn) = &claim.listener_arn
            && let Some(found) = self
                .elb
                .describe_listeners(std::slice::from_ref(arn))
                .await?
                .pop()
            && found.port == claim.port
        {
            self.align_listener(
                claim,
                &found,
                build.tls.as_ref(),
                target_group_arn,
                build.changed,
            )
            .await?;
            return Ok(found.arn);
        }
        self.adopt_listener_on_port(claim, target_group_arn, build)
            .await
    }

    async fn adopt_listener_on_port(
        &self,
        claim: &Claim,
        target_group_arn: &str,
        build: &Build,
    ) -> Result<String> {
        let on_port: Vec<_> = self
            .elb
            .listeners_of(&claim.nlb_arn)
            .await
            .map_err(|e| refused_or(claim, e))?
            .into_iter()
            .filter(|l| l.port == claim.port)
            .collect();
        let Some(first) = on_port.first() else {
            return match self.new_listener(claim, target_group_arn, build).await {
                Err(Error::Elb(e)) => Err(refused_or(claim, e)),
                other => other,
            };
        };
        let arns: Vec<String> = on_port.iter().map(|l| l.arn.clone()).collect();
        let all_tags = self.elb.tags_of(&arns).await?;
        if !owned_by(all_tags.get(&first.arn), &claim.owner.uid) {
            // Someone else's listener: the claim moves; the port stays counted as used.
            return Err(Error::ListenerRefused {
                claim: Box::new(claim.clone()),
                reason: format!(
                    "port {} of NLB {} is used by listener {}, which nlb-port-pool did not \
                     make for this Service",
                    claim.port, claim.nlb_arn, first.arn
                ),
                nlb_unusable: false,
            });
        }
        // More than one of ours on one port (possible only where duplicates are accepted, as
        // in moto): keep the first.
        for extra in on_port
            .iter()
            .skip(1)
            .filter(|l| owned_by(all_tags.get(&l.arn), &claim.owner.uid))
        {
            self.elb.delete_listener(&extra.arn).await?;
        }
        // Adopted: what an earlier run made may predate the settings asked for now.
        self.align_listener(claim, first, build.tls.as_ref(), target_group_arn, true)
            .await?;
        Ok(first.arn.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::annotations::{HealthCheckPort, HealthCheckProtocol};

    #[test]
    fn unset_health_check_settings_never_differ() {
        let want = HealthCheckSpec {
            interval_seconds: None,
            healthy_threshold: None,
            unhealthy_threshold: None,
            ..HealthCheckSpec::default()
        };
        let have = HealthCheckSpec {
            interval_seconds: Some(30),
            timeout_seconds: Some(10),
            healthy_threshold: Some(5),
            unhealthy_threshold: Some(2),
            ..HealthCheckSpec::default()
        };
        assert!(!health_check_differs(&want, &have));
        // A group made with AWS's defaults (30 s, 5 healthy checks) is brought to the room
        // defaults (10 s, 2/2).
        assert!(health_check_differs(&HealthCheckSpec::default(), &have));
        let want_http = HealthCheckSpec {
            protocol: HealthCheckProtocol::Http,
            path: Some("/h".into()),
            ..want.clone()
        };
        assert!(health_check_differs(&want_http, &have));
        let want_port = HealthCheckSpec {
            port: HealthCheckPort::Port(9),
            ..want.clone()
        };
        assert!(health_check_differs(&want_port, &have));
        let want_interval = HealthCheckSpec {
            interval_seconds: Some(10),
            ..want.clone()
        };
        assert!(health_check_differs(&want_interval, &have));
    }
}
