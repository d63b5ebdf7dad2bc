//! Zones in memory: each NLB's zones and cross-zone setting, and the zone of target IPs a test
//! placed (AWS detects the zone of an IP in one of the VPC's subnets).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::state::{MemoryLoadBalancing, nlb_not_found};
use crate::model::elb::ElbError;

/// The zones every NLB in memory is in unless a test says otherwise.
pub const DEFAULT_ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];

impl MemoryLoadBalancing {
    /// Sets an NLB's cross-zone setting (as ModifyLoadBalancerAttributes would).
    pub fn set_nlb_cross_zone(&self, nlb_arn: &str, enabled: bool) {
        let mut st = self.lock();
        st.zones.cross_zone.insert(nlb_arn.to_owned(), enabled);
        if let Some(made) = st.made.get_mut(nlb_arn) {
            made.cross_zone = enabled;
        }
    }

    /// Puts a target IP in a zone (DescribeTargetHealth then reports it there).
    pub fn place_target(&self, ip: Ipv4Addr, zone: &str) {
        self.lock().zones.targets.insert(ip, zone.to_owned());
    }

    pub(super) fn zones_of(&self, nlb_arn: &str) -> Result<BTreeSet<String>, ElbError> {
        let st = self.lock();
        if !st.nlbs.contains_key(nlb_arn) {
            return Err(nlb_not_found("DescribeLoadBalancers", nlb_arn));
        }
        Ok(DEFAULT_ZONES.iter().map(|z| (*z).to_owned()).collect())
    }

    pub(super) fn cross_zone_of(&self, nlb_arn: &str) -> Result<bool, ElbError> {
        let st = self.lock();
        if !st.nlbs.contains_key(nlb_arn) {
            return Err(nlb_not_found("DescribeLoadBalancerAttributes", nlb_arn));
        }
        Ok(
            match (st.zones.cross_zone.get(nlb_arn), st.made.get(nlb_arn)) {
                (Some(set), _) => *set,
                (None, Some(made)) => made.cross_zone,
                // A pre-made NLB of a test: as this project recommends them.
                (None, None) => true,
            },
        )
    }
}
