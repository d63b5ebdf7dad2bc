//! A claim and what it is about: the owner Service (or pod), the listener port it holds on an
//! NLB, how far it has come, and the NLB's usage the claim transaction checks.

use std::collections::BTreeSet;

use super::listing::NlbListing;
use super::pool_records::NlbState;
use super::token::RunToken;
use crate::contract::event::ServiceKey;
use crate::contract::protocol::ListenerProtocol;
use crate::contract::service_model::ListenerKey;

/// The Service a claim belongs to. The uid decides ownership: a Service deleted and made
/// again under the same name is another owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Cluster, namespace and name.
    pub key: ServiceKey,
    /// The Service's uid.
    pub uid: String,
    /// For a Service in per-pod mode, the pod the claim is for, by name (a StatefulSet pod
    /// made again under its name keeps its claim); `None` for the Service's own listeners.
    pub pod: Option<String>,
}

/// Prefix of the sort key of a pod's owner records: `pod#<pod name>#<listener key>`.
pub const POD_RECORD_PREFIX: &str = "pod#";

/// DynamoDB takes at most 100 items in one transaction.
pub const TRANSACTION_ITEMS: usize = 100;

/// The most listeners one Service (or one pod, in per-pod mode) may ask for: its claims are one
/// transaction of two items per listener (the port and the owner record) and the NLB's item.
pub const MAX_LISTENERS_PER_CLAIM: usize = (TRANSACTION_ITEMS - 1) / 2;

impl Owner {
    /// The Service's own listeners (not a pod's).
    pub fn service(key: ServiceKey, uid: impl Into<String>) -> Self {
        Self {
            key,
            uid: uid.into(),
            pod: None,
        }
    }

    /// The sort key of this owner's record of listener `key`, within the Service's partition:
    /// the listener key for the Service's own listeners, `pod#<pod>#<key>` for a pod's, so one
    /// query reads a Service's whole picture and a prefix query one pod's.
    pub fn record_sk(&self, key: &ListenerKey) -> String {
        match &self.pod {
            None => key.as_str().to_owned(),
            Some(pod) => format!("{POD_RECORD_PREFIX}{pod}#{key}"),
        }
    }

    /// Reads a record's sort key back: the pod (if any) and the listener key.
    pub fn parse_record_sk(sk: &str) -> Option<(Option<String>, ListenerKey)> {
        match sk.strip_prefix(POD_RECORD_PREFIX) {
            None => Some((None, ListenerKey::parse(sk)?)),
            Some(rest) => {
                let (pod, key) = rest.rsplit_once('#')?;
                (!pod.is_empty()).then_some(())?;
                Some((Some(pod.to_owned()), ListenerKey::parse(key)?))
            }
        }
    }
}

/// How far a claim has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// The port is held; the listener and target group may not exist yet.
    Claimed,
    /// The listener and target group exist and are recorded.
    Active,
}

impl ClaimState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Active => "active",
        }
    }
}

/// One listener port held for one Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The Service.
    pub owner: Owner,
    /// Which listener of the Service.
    pub key: ListenerKey,
    /// The Service port's name.
    pub port_name: String,
    /// The listener protocol.
    pub protocol: ListenerProtocol,
    /// The Service port.
    pub service_port: u16,
    /// The pool the NLB belongs to.
    pub pool: String,
    /// The NLB.
    pub nlb_arn: String,
    /// The listener port on the NLB.
    pub port: u16,
    /// How far it has come.
    pub state: ClaimState,
    /// The listener, once made.
    pub listener_arn: Option<String>,
    /// The target group, once made.
    pub target_group_arn: Option<String>,
    /// When the port was claimed (seconds since the epoch).
    pub claimed_at: i64,
    /// The run that holds (or last held) the claim; empty on records older than tokens.
    pub token: String,
    /// When that run last confirmed its hold (seconds since the epoch); 0 once it let go.
    pub held_at: i64,
    /// A pod's claim: since when its pod has been seen gone from the Service (seconds since
    /// the epoch); released once gone longer than the Service's grace.
    pub gone_since: Option<i64>,
    /// What the listener was last made from: a fingerprint of its spec, health check, pool and
    /// targets, noted once targets and annotations were in line with them. An event whose
    /// inputs have this fingerprint, for a Service whose annotations advertise the claim,
    /// costs no ELBv2 call (see `reconcile::fingerprint`).
    pub applied: Option<String>,
    /// The `nlb.port-manager/claim-key` of the Service that made the claim, if it named one:
    /// another Service naming the same key (in this cluster or another sharing the table) may
    /// take the listener over once this one lets it go (see `reconcile::claim_key`).
    pub claim_key: Option<String>,
}

impl Claim {
    /// The sort key of the claim's owner record.
    pub fn record_sk(&self) -> String {
        self.owner.record_sk(&self.key)
    }

    /// Whether `token`'s run holds this claim (as read).
    pub fn held_by(&self, token: &RunToken) -> bool {
        self.token == token.as_str()
    }

    /// Whether another run may still be working on this claim at `now`: it has not let go and
    /// confirmed its hold less than `grace_seconds` ago.
    pub fn held_by_live_run(&self, now: i64, grace_seconds: i64) -> bool {
        self.held_at > 0 && now - self.held_at < grace_seconds
    }
}

/// How many ports of an NLB are claimed, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlbUsage {
    /// The NLB.
    pub nlb_arn: String,
    /// Claimed ports.
    pub ports: BTreeSet<u16>,
    /// Whether the NLB takes claims: its item has no `state` (a pre-made NLB) or `state` is
    /// `active`. Claims are refused, in the claim transaction itself, on any other state (an NLB
    /// of a managed pool being made or retired).
    pub active: bool,
    /// The item's `state`: `None` for a pre-made NLB (or one without an item).
    pub state: Option<NlbState>,
    /// Since when a made NLB has had no claim, as the pool function noted it.
    pub empty_since: Option<i64>,
    /// What the sweep last saw on it (`None` before its first listing).
    pub listing: Option<NlbListing>,
}

impl NlbUsage {
    /// An NLB without an item: nothing claimed on it, takes claims.
    pub fn unclaimed(nlb_arn: &str) -> Self {
        Self {
            nlb_arn: nlb_arn.to_owned(),
            ports: BTreeSet::new(),
            active: true,
            state: None,
            empty_since: None,
            listing: None,
        }
    }
}

/// What the claim transaction requires of the NLB item besides free ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlbTerms {
    /// At most this many claims on the NLB.
    pub listener_quota: u32,
    /// The pool function made the NLB: its item must exist and be `active`. A made NLB's item
    /// exists from the moment its ARN is recorded until it is retired, so a claim with a stale
    /// view of a retired NLB is refused instead of bringing its item back. A pre-made NLB takes
    /// claims with no item or no `state`.
    pub made: bool,
}

impl NlbTerms {
    /// A pre-made NLB with `listener_quota`.
    pub fn premade(listener_quota: u32) -> Self {
        Self {
            listener_quota,
            made: false,
        }
    }
}

/// A port item, as the sweep reads it: the port and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    /// The NLB.
    pub nlb_arn: String,
    /// The port.
    pub port: u16,
    /// The holder.
    pub owner: Owner,
    /// The holder's listener key.
    pub key: ListenerKey,
    /// When it was claimed.
    pub claimed_at: i64,
}

/// Seconds since the epoch, now.
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}
