//! What the in-memory ELBv2 holds, as plain data: target groups, listeners, the NLBs made
//! through the fleet, zones, and the quotas a test sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::fleet::NlbSpec;
use crate::model::elb::{ListenerInfo, TargetGroupInfo};
use crate::model::targets::Target;

/// A target group held in memory.
#[derive(Debug, Clone)]
pub struct MemoryTargetGroup {
    /// Name, ARN and health check.
    pub info: TargetGroupInfo,
    /// Its protocol.
    pub protocol: ListenerProtocol,
    /// Its tags.
    pub tags: HashMap<String, String>,
    /// Registered targets.
    pub targets: BTreeSet<Target>,
    /// Deregistered targets still draining (AWS keeps them for the deregistration delay; here
    /// until registered again).
    pub draining: BTreeSet<Target>,
    /// Attributes set on it (AWS's defaults are not listed).
    pub attributes: BTreeMap<String, String>,
}

/// A listener held in memory.
#[derive(Debug, Clone)]
pub struct MemoryListener {
    /// Its description.
    pub info: ListenerInfo,
    /// Its tags.
    pub tags: HashMap<String, String>,
    /// Its certificates besides the default one.
    pub certificates: Vec<String>,
}

/// An NLB made through the fleet.
#[derive(Debug, Clone)]
pub struct MadeNlb {
    /// What it was made from.
    pub spec: NlbSpec,
    /// Its tags.
    pub tags: Vec<(String, String)>,
    /// Describes left before it reports active.
    pub polls_left: usize,
    /// Whether cross-zone load balancing is on.
    pub cross_zone: bool,
}

/// The quotas the double enforces; `None` is not enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElbQuotas {
    /// Target groups in the region ("Target Groups per Region", 3,000 by default on AWS).
    pub target_groups: Option<usize>,
    /// Targets per NLB, over the target groups its listeners forward to, a target in N groups
    /// counting N times ("Targets per Availability Zone per Network Load Balancer", 500 by
    /// default; the double has one zone).
    pub targets_per_nlb: Option<usize>,
}

/// NLBs' zones and cross-zone settings, and targets' zones.
#[derive(Debug, Default)]
pub(super) struct Zones {
    /// NLBs' cross-zone settings set by a test (others: on, made NLBs: as made).
    pub(super) cross_zone: BTreeMap<String, bool>,
    /// Targets' zones, by IP.
    pub(super) targets: BTreeMap<Ipv4Addr, String>,
}

impl Zones {
    /// The zone of a target IP, if a test placed it.
    pub(super) fn zone_of(&self, ip: Ipv4Addr) -> Option<String> {
        self.targets.get(&ip).cloned()
    }
}
