//! Conversion between claims and DynamoDB items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{PK, SK, nlb_pk, owner_pk, port_sk};
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::ListenerKey;
use crate::model::claims::{Claim, ClaimState, Owner, PortHolder};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Owner record attribute: the token of the run that holds the claim.
pub const TOKEN: &str = "token";
/// Owner record attribute: when that run last confirmed its hold; 0 once let go.
pub const HELD_AT: &str = "heldAt";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn owner_attrs(item: &mut Item, owner: &Owner) {
    item.insert("cluster".into(), s(&owner.key.cluster));
    item.insert("namespace".into(), s(&owner.key.namespace));
    item.insert("name".into(), s(&owner.key.name));
    item.insert("uid".into(), s(&owner.uid));
    if let Some(pod) = &owner.pod {
        item.insert(POD.into(), s(pod));
    }
}

/// Owner record and port item attribute: the pod of a per-pod claim.
pub const POD: &str = "pod";
/// Owner record attribute: since when a pod's claim has seen its pod gone.
pub const GONE_SINCE: &str = "goneSince";
/// Owner record attribute: the fingerprint of what the listener was last made from.
pub const APPLIED: &str = "applied";
/// Owner record attribute: the Service's claim key, when it named one.
pub const CLAIM_KEY: &str = "claimKey";

/// The owner record of `claim`.
pub fn owner_item(claim: &Claim) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(owner_pk(&claim.owner.uid)));
    item.insert(SK.into(), s(claim.record_sk()));
    owner_attrs(&mut item, &claim.owner);
    item.insert("portName".into(), s(&claim.port_name));
    item.insert("protocol".into(), s(claim.protocol.as_str()));
    item.insert("servicePort".into(), n(claim.service_port));
    item.insert("pool".into(), s(&claim.pool));
    item.insert("nlbArn".into(), s(&claim.nlb_arn));
    item.insert("port".into(), n(claim.port));
    item.insert("state".into(), s(claim.state.as_str()));
    item.insert("claimedAt".into(), n(claim.claimed_at));
    item.insert(TOKEN.into(), s(&claim.token));
    item.insert(HELD_AT.into(), n(claim.held_at));
    if let Some(arn) = &claim.listener_arn {
        item.insert("listenerArn".into(), s(arn));
    }
    if let Some(arn) = &claim.target_group_arn {
        item.insert("targetGroupArn".into(), s(arn));
    }
    if let Some(since) = claim.gone_since {
        item.insert(GONE_SINCE.into(), n(since));
    }
    if let Some(applied) = &claim.applied {
        item.insert(APPLIED.into(), s(applied));
    }
    if let Some(key) = &claim.claim_key {
        item.insert(CLAIM_KEY.into(), s(key));
    }
    item
}

/// The port item of `claim`.
pub fn port_item(claim: &Claim) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(nlb_pk(&claim.nlb_arn)));
    item.insert(SK.into(), s(port_sk(claim.port)));
    owner_attrs(&mut item, &claim.owner);
    item.insert("key".into(), s(claim.key.as_str()));
    item.insert("claimedAt".into(), n(claim.claimed_at));
    item
}

/// Reads attribute `name` of an item, naming the item and attribute when it is missing.
struct Reader<'a> {
    item: &'a Item,
}

impl Reader<'_> {
    fn what(&self) -> String {
        let key = |k: &str| match self.item.get(k) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => "?".to_owned(),
        };
        format!("item ({}, {})", key(PK), key(SK))
    }

    fn s(&self, name: &str) -> Result<String, String> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            Some(_) => Err(format!("{}: attribute {name} is not a string", self.what())),
            None => Err(format!("{}: attribute {name} is missing", self.what())),
        }
    }

    fn opt_s(&self, name: &str) -> Option<String> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| format!("{}: attribute {name} = {v} is out of range", self.what())),
            Some(_) => Err(format!("{}: attribute {name} is not a number", self.what())),
            None => Err(format!("{}: attribute {name} is missing", self.what())),
        }
    }

    fn owner(&self) -> Result<Owner, String> {
        Ok(Owner {
            key: ServiceKey {
                cluster: self.s("cluster")?,
                namespace: self.s("namespace")?,
                name: self.s("name")?,
            },
            uid: self.s("uid")?,
            pod: self.opt_s(POD),
        })
    }

    fn key(&self, name: &str) -> Result<ListenerKey, String> {
        let raw = self.s(name)?;
        ListenerKey::parse(&raw)
            .ok_or_else(|| format!("{}: {name} {raw:?} is not a listener key", self.what()))
    }
}

/// Reads an owner record.
pub fn claim_from_item(item: &Item) -> Result<Claim, String> {
    let r = Reader { item };
    let protocol_raw = r.s("protocol")?;
    let protocol = ListenerProtocol::parse(&protocol_raw)
        .ok_or_else(|| format!("{}: protocol {protocol_raw:?} is unknown", r.what()))?;
    let state = match r.s("state")?.as_str() {
        "claimed" => ClaimState::Claimed,
        "active" => ClaimState::Active,
        other => return Err(format!("{}: state {other:?} is unknown", r.what())),
    };
    let sk = r.s(SK)?;
    let (pod, key) = Owner::parse_record_sk(&sk)
        .ok_or_else(|| format!("{}: sort key {sk:?} is not a listener key", r.what()))?;
    let owner = r.owner()?;
    if owner.pod != pod {
        return Err(format!(
            "{}: attribute {POD} does not match the sort key",
            r.what()
        ));
    }
    Ok(Claim {
        owner,
        key,
        port_name: r.s("portName")?,
        protocol,
        service_port: r.n("servicePort")?,
        pool: r.s("pool")?,
        nlb_arn: r.s("nlbArn")?,
        port: r.n("port")?,
        state,
        listener_arn: r.opt_s("listenerArn"),
        target_group_arn: r.opt_s("targetGroupArn"),
        claimed_at: r.n("claimedAt")?,
        // Records written before run tokens have neither: held by nobody, free to take over.
        token: r.opt_s(TOKEN).unwrap_or_default(),
        held_at: if item.contains_key(HELD_AT) {
            r.n(HELD_AT)?
        } else {
            0
        },
        gone_since: if item.contains_key(GONE_SINCE) {
            Some(r.n(GONE_SINCE)?)
        } else {
            None
        },
        applied: r.opt_s(APPLIED),
        claim_key: r.opt_s(CLAIM_KEY),
    })
}

/// Reads the holder of an owner record returned by a failed condition: (token, held_at);
/// `None` when there was no record.
pub fn holder_of(item: Option<&Item>) -> Option<(String, i64)> {
    let item = item.filter(|i| !i.is_empty())?;
    let r = Reader { item };
    Some((
        r.opt_s(TOKEN).unwrap_or_default(),
        r.n(HELD_AT).unwrap_or(0),
    ))
}

/// Reads a port item.
pub fn holder_from_item(nlb_arn: &str, item: &Item) -> Result<PortHolder, String> {
    let r = Reader { item };
    let sk = r.s(SK)?;
    let port = sk
        .strip_prefix("port#")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("{}: not a port item", r.what()))?;
    Ok(PortHolder {
        nlb_arn: nlb_arn.to_owned(),
        port,
        owner: r.owner()?,
        key: r.key("key")?,
        claimed_at: r.n("claimedAt")?,
    })
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
