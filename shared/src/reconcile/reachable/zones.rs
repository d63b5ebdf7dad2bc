//! Whether players reach a listener's healthy targets from every zone of its NLB: with
//! cross-zone load balancing off (the target group's own attribute, or its NLB's when it
//! follows it), an NLB node forwards only to targets in its own zone, while DNS still sends
//! players to every zone's node (see [`crate::contract::cross_zone`]).

use std::collections::BTreeSet;

use super::super::Result;
use super::checker::ReachChecker;
use crate::contract::cross_zone::{ATTR_CROSS_ZONE, FOLLOW_NLB, ZoneReach, reach};
use crate::model::claims::Claim;
use crate::model::elb::TargetHealth;

impl ReachChecker<'_> {
    /// Why players in some zone cannot reach `claim`'s healthy targets (`targets`, as just
    /// described), or `None` when every zone reaches one. Reads the group's attributes; the
    /// NLB's setting only when the group follows it, its zones only when cross-zone is off.
    pub(super) async fn zone_problem(
        &self,
        claim: &Claim,
        group: &str,
        targets: &[TargetHealth],
    ) -> Result<Option<String>> {
        let attributes = self.reconciler.elb.target_group_attributes(group).await?;
        let value = attributes.get(ATTR_CROSS_ZONE).map(String::as_str);
        if value == Some("true") {
            return Ok(None);
        }
        let follows = value.is_none_or(|v| v == FOLLOW_NLB);
        let nlb_on = follows && self.reconciler.elb.nlb_cross_zone(&claim.nlb_arn).await?;
        if nlb_on {
            return Ok(None);
        }
        let zones = self.reconciler.elb.nlb_zones(&claim.nlb_arn).await?;
        let healthy: BTreeSet<String> = targets
            .iter()
            .filter(|t| t.is_healthy())
            .filter_map(|t| t.zone.clone())
            .collect();
        Ok(match reach(value, nlb_on, &zones, &healthy) {
            ZoneReach::CrossZone | ZoneReach::EveryZone => None,
            ZoneReach::Missing(missing) => Some(format!(
                "listener {}: cross-zone load balancing is off for target group {group} ({}) \
                 and zone(s) {} of its NLB have no healthy target: players DNS sends there \
                 cannot connect (turn it on: nlb.port-manager/cross-zone \"true\")",
                claim.key,
                if follows {
                    "it follows its NLB's setting"
                } else {
                    "its own attribute"
                },
                missing.join(", ")
            )),
        })
    }
}
