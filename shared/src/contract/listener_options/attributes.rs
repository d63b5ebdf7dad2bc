//! The target group attributes a Service may ask for, and what a target group is given.

use std::collections::BTreeMap;

use super::keys::{
    ATTR_CONNECTION_TERMINATION, ATTR_DEREGISTRATION_DELAY, ATTR_PRESERVE_CLIENT_IP,
    ATTR_PROXY_PROTOCOL_V2,
};
use crate::contract::cross_zone::{ATTR_CROSS_ZONE, CrossZoneWant};
use crate::contract::protocol::ListenerProtocol;

/// What the target group annotations ask for; unset fields keep AWS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttributeOptions {
    /// `preserve_client_ip.enabled`.
    pub preserve_client_ip: Option<bool>,
    /// `proxy_protocol_v2.enabled`.
    pub proxy_protocol_v2: Option<bool>,
    /// `deregistration_delay.timeout_seconds`.
    pub deregistration_delay: Option<u32>,
    /// `deregistration_delay.connection_termination.enabled`.
    pub connection_termination: Option<bool>,
    /// `load_balancing.cross_zone.enabled` ([`CROSS_ZONE`](super::CROSS_ZONE); unset: the pool's default).
    pub cross_zone: Option<bool>,
}

/// The target group attributes this system manages, as wanted for one listener: every key
/// the listener's protocol takes, AWS's default where the Service sets nothing (so removing
/// an annotation puts the default back).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TargetGroupAttributes {
    values: BTreeMap<&'static str, String>,
    /// Cross-zone load balancing: as the Service asks ([`ListenerOptions::setup_for`](super::ListenerOptions::setup_for)), then
    /// resolved against the pool ([`TargetGroupAttributes::with_cross_zone`]).
    cross_zone: Option<CrossZoneWant>,
}

impl TargetGroupAttributes {
    /// What `options` ask of a target group of `protocol`.
    pub fn wanted(options: &AttributeOptions, protocol: ListenerProtocol) -> Self {
        let flag = |b: bool| if b { "true" } else { "false" }.to_owned();
        let mut map = BTreeMap::new();
        if protocol == ListenerProtocol::Tcp {
            map.insert(
                ATTR_PRESERVE_CLIENT_IP,
                flag(options.preserve_client_ip.unwrap_or(false)),
            );
            map.insert(
                ATTR_PROXY_PROTOCOL_V2,
                flag(options.proxy_protocol_v2.unwrap_or(false)),
            );
        }
        map.insert(
            ATTR_DEREGISTRATION_DELAY,
            options.deregistration_delay.unwrap_or(300).to_string(),
        );
        map.insert(
            ATTR_CONNECTION_TERMINATION,
            flag(options.connection_termination.unwrap_or(false)),
        );
        Self {
            values: map,
            cross_zone: options.cross_zone.map(|enabled| CrossZoneWant {
                enabled,
                nlbs_agree: false,
            }),
        }
    }

    /// Resolves cross-zone load balancing: as the Service asked, else `pool_default`;
    /// `nlbs_have(enabled)` says whether every NLB the group may sit behind is known to have
    /// that value itself (then a new group follows its NLB and needs no attribute call).
    pub fn with_cross_zone(mut self, pool_default: bool, nlbs_have: impl Fn(bool) -> bool) -> Self {
        let enabled = self.cross_zone.map_or(pool_default, |c| c.enabled);
        self.cross_zone = Some(CrossZoneWant {
            enabled,
            nlbs_agree: nlbs_have(enabled),
        });
        self
    }

    /// Cross-zone load balancing as resolved (`None` before [`Self::with_cross_zone`] when the
    /// Service asks nothing).
    pub fn cross_zone(&self) -> Option<CrossZoneWant> {
        self.cross_zone
    }

    /// Whether a group with AWS's defaults is as wanted (so nothing needs reading or setting
    /// unless something changed).
    pub fn is_aws_default(&self, protocol: ListenerProtocol) -> bool {
        self.values == Self::aws_defaults(protocol).values
            && self.cross_zone.is_none_or(|c| c.nlbs_agree)
    }

    /// What a group just made (with AWS's defaults) must be given: the wanted values that are
    /// not AWS's, and cross-zone unless the group's NLBs already have it.
    pub fn on_creation(&self, protocol: ListenerProtocol) -> Vec<(String, String)> {
        let defaults = Self::aws_defaults(protocol);
        let mut changes: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(k, v)| defaults.values.get(*k) != Some(*v))
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(c) = self.cross_zone.filter(|c| !c.nlbs_agree) {
            changes.push((ATTR_CROSS_ZONE.to_owned(), c.value().to_owned()));
        }
        changes
    }

    /// AWS's defaults for an IP target group of `protocol`.
    pub fn aws_defaults(protocol: ListenerProtocol) -> Self {
        Self::wanted(&AttributeOptions::default(), protocol)
    }

    /// The wanted values that differ from `have` (a target group's attributes as described);
    /// a key `have` lacks counts as AWS's default.
    pub fn differences(
        &self,
        have: &BTreeMap<String, String>,
        protocol: ListenerProtocol,
    ) -> Vec<(String, String)> {
        let defaults = Self::aws_defaults(protocol);
        let mut changes: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(key, want)| {
                let current = have
                    .get(**key)
                    .map(String::as_str)
                    .or_else(|| defaults.values.get(**key).map(String::as_str));
                current != Some(want.as_str())
            })
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(c) = self.cross_zone
            && !c.satisfied_by(have.get(ATTR_CROSS_ZONE).map(String::as_str))
        {
            changes.push((ATTR_CROSS_ZONE.to_owned(), c.value().to_owned()));
        }
        changes
    }

    /// Every wanted key and value (cross-zone aside: see [`Self::cross_zone`]).
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }
}
