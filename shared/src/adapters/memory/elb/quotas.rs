//! AWS's target group and target quotas in the in-memory ELBv2: off unless a test sets them
//! (as moto enforces none), then refused with the kinds the AWS adapter maps AWS's
//! `TooManyTargetGroups` and `TooManyTargets` to.

use super::resources::ElbQuotas;
use super::state::{MemoryLoadBalancing, State};
use crate::model::elb::{ElbError, ElbErrorKind};
use crate::model::targets::Target;

impl MemoryLoadBalancing {
    /// Enforces `quotas` from now on (the target groups and targets that exist stay).
    pub fn set_quotas(&self, quotas: ElbQuotas) {
        self.lock().quotas = quotas;
    }
}

impl State {
    /// CreateTargetGroup's check: one more target group must fit the regional quota.
    pub(super) fn check_target_group_quota(&self) -> Result<(), ElbError> {
        match self.quotas.target_groups {
            Some(max) if self.target_groups.len() >= max => Err(ElbError {
                operation: "CreateTargetGroup",
                message: format!(
                    "TooManyTargetGroups: The maximum number of target groups '{max}' has been \
                     reached"
                ),
                retryable: false,
                kind: ElbErrorKind::TooManyTargetGroups,
            }),
            _ => Ok(()),
        }
    }

    /// RegisterTargets' check: the targets of `target_group_arn` not yet registered must fit
    /// the quota of every NLB one of its listeners is on.
    pub(super) fn check_target_quota(
        &self,
        target_group_arn: &str,
        adding: &[Target],
    ) -> Result<(), ElbError> {
        let Some(max) = self.quotas.targets_per_nlb else {
            return Ok(());
        };
        let new = match self.target_groups.get(target_group_arn) {
            Some(tg) => adding.iter().filter(|t| !tg.targets.contains(t)).count(),
            None => return Ok(()),
        };
        let nlbs = self
            .listeners
            .values()
            .filter(|l| l.info.target_group_arn.as_deref() == Some(target_group_arn))
            .map(|l| l.info.nlb_arn.as_str());
        for nlb in nlbs {
            let held: usize = self
                .listeners
                .values()
                .filter(|l| l.info.nlb_arn == nlb)
                .filter_map(|l| l.info.target_group_arn.as_deref())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter_map(|arn| self.target_groups.get(arn))
                .map(|tg| tg.targets.len())
                .sum();
            if held + new > max {
                return Err(ElbError {
                    operation: "RegisterTargets",
                    message: format!(
                        "TooManyTargets: The maximum number of targets per Availability Zone \
                         per load balancer '{max}' has been reached on {nlb}"
                    ),
                    retryable: false,
                    kind: ElbErrorKind::TooManyTargets,
                });
            }
        }
        Ok(())
    }
}
