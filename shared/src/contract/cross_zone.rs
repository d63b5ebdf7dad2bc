//! Cross-zone load balancing of a room's target group: whether an NLB node in one zone forwards
//! to a target in another.
//!
//! NLBs have it off by default and a target group follows its NLB
//! (`use_load_balancer_configuration`). Off, a node forwards only to targets in its own zone,
//! and DNS keeps a zone only while every target group has a healthy target there: a room of one
//! pod lives in one zone, so DNS fails open to every zone and the players sent to the other
//! zones' nodes cannot connect, while the target reads `healthy`. So every target group here has
//! it on unless the Service (`nlb.port-manager/cross-zone: "false"`) or its pool
//! (`"crossZone": false`) says otherwise; on costs AWS's inter-zone data transfer for the
//! traffic that crosses zones.
//!
//! To keep an allocation at its calls, a new group is given the attribute only when the pool's
//! NLBs are not all known (from the sweep's record of each NLB) to have the value wanted: when
//! they do, the group follows them as made.

use std::collections::{BTreeMap, BTreeSet};

/// The target group (and load balancer) attribute.
pub const ATTR_CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";
/// A target group's value of [`ATTR_CROSS_ZONE`] that follows its load balancer's.
pub const FOLLOW_NLB: &str = "use_load_balancer_configuration";

/// What a Service's target groups should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrossZoneWant {
    /// On or off.
    pub enabled: bool,
    /// The pool's NLBs all have `enabled` themselves, so a group that follows them has it too
    /// and needs no attribute of its own.
    pub nlbs_agree: bool,
}

impl CrossZoneWant {
    /// The wanted value as ELBv2 writes it.
    pub fn value(self) -> &'static str {
        if self.enabled { "true" } else { "false" }
    }

    /// Whether a group whose attribute reads `have` (`None`: not described) is as wanted.
    pub fn satisfied_by(self, have: Option<&str>) -> bool {
        match have.unwrap_or(FOLLOW_NLB) {
            FOLLOW_NLB => self.nlbs_agree,
            value => value == self.value(),
        }
    }
}

/// Whether a group's players reach its targets from every zone of its NLB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneReach {
    /// Cross-zone is on: every node forwards to every healthy target.
    CrossZone,
    /// Cross-zone is off and each of the NLB's zones has a healthy target of its own.
    EveryZone,
    /// Cross-zone is off and these zones have no healthy target: players DNS sends to their
    /// nodes cannot connect.
    Missing(Vec<String>),
}

/// Judges a target group's reach: `group_value` its [`ATTR_CROSS_ZONE`] (`None` when it has
/// none), `nlb_on` its NLB's cross-zone setting, `nlb_zones` the NLB's zones, `healthy_zones`
/// the zones of its healthy targets (a target whose zone is unknown is in none).
pub fn reach(
    group_value: Option<&str>,
    nlb_on: bool,
    nlb_zones: &BTreeSet<String>,
    healthy_zones: &BTreeSet<String>,
) -> ZoneReach {
    let on = match group_value.unwrap_or(FOLLOW_NLB) {
        FOLLOW_NLB => nlb_on,
        value => value == "true",
    };
    if on {
        return ZoneReach::CrossZone;
    }
    let missing: Vec<String> = nlb_zones.difference(healthy_zones).cloned().collect();
    if missing.is_empty() {
        ZoneReach::EveryZone
    } else {
        ZoneReach::Missing(missing)
    }
}

/// Whether every NLB of `nlbs` is known (from `known`, the sweep's record) to balance across
/// zones as `enabled` says.
pub fn nlbs_agree(nlbs: &[String], known: &BTreeMap<String, bool>, enabled: bool) -> bool {
    !nlbs.is_empty() && nlbs.iter().all(|n| known.get(n) == Some(&enabled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|z| (*z).to_owned()).collect()
    }

    #[test]
    fn a_group_that_follows_an_nlb_with_cross_zone_off_reaches_only_its_targets_zones() {
        let nlb = zones(&["a", "b", "c"]);
        // One pod in zone a: players sent to b's and c's nodes cannot connect.
        assert_eq!(
            reach(None, false, &nlb, &zones(&["a"])),
            ZoneReach::Missing(vec!["b".into(), "c".into()])
        );
        assert_eq!(
            reach(Some(FOLLOW_NLB), false, &nlb, &zones(&["a", "b", "c"])),
            ZoneReach::EveryZone
        );
        assert_eq!(
            reach(None, true, &nlb, &zones(&["a"])),
            ZoneReach::CrossZone
        );
        // The group's own attribute wins over the NLB's.
        assert_eq!(
            reach(Some("true"), false, &nlb, &zones(&[])),
            ZoneReach::CrossZone
        );
        assert!(matches!(
            reach(Some("false"), true, &nlb, &zones(&["a"])),
            ZoneReach::Missing(_)
        ));
    }

    #[test]
    fn a_following_group_is_as_wanted_only_when_the_nlbs_agree() {
        let on_agreeing = CrossZoneWant {
            enabled: true,
            nlbs_agree: true,
        };
        let on_alone = CrossZoneWant {
            nlbs_agree: false,
            ..on_agreeing
        };
        assert!(on_agreeing.satisfied_by(None));
        assert!(on_agreeing.satisfied_by(Some(FOLLOW_NLB)));
        assert!(on_agreeing.satisfied_by(Some("true")));
        assert!(!on_agreeing.satisfied_by(Some("false")));
        assert!(!on_alone.satisfied_by(Some(FOLLOW_NLB)));
        assert!(on_alone.satisfied_by(Some("true")));
    }

    #[test]
    fn nlbs_agree_only_when_each_is_known_to() {
        let a = "arn:a".to_owned();
        let b = "arn:b".to_owned();
        let known = BTreeMap::from([(a.clone(), true), (b.clone(), false)]);
        assert!(nlbs_agree(std::slice::from_ref(&a), &known, true));
        assert!(!nlbs_agree(&[a.clone(), b.clone()], &known, true));
        assert!(!nlbs_agree(&[a, "arn:unknown".to_owned()], &known, true));
        assert!(!nlbs_agree(&[], &known, true));
    }
}
