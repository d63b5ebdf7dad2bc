//! One pool ([`NlbPool`]) and all configured pools ([`PoolSet`]), parsed and validated from
//! the `POOLS` JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::limits::MAX_LISTENERS_PER_NLB;
use super::managed::{ManagedJson, ManagedSpec};
use super::port_range::PortRange;

pub use crate::contract::annotations::DEFAULT_POOL;

/// How a pool chooses the NLB for a Service's listeners (a Service's later listeners join its
/// first ones, and [`crate::contract::annotations::NLB`] names one, whatever the placement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementPolicy {
    /// At random, weighted by free room (the default): fuller NLBs are chosen less, and
    /// concurrent claims spread over the pool's NLB items instead of meeting on one.
    #[default]
    Balanced,
    /// The fullest NLB with room first: fewer NLBs in use, so a managed pool retires the
    /// empty ones (lower cost).
    Pack,
    /// The emptiest NLB first: the fewest rooms share an NLB (smaller blast radius).
    Spread,
}

/// One pool: the NLBs it spreads listeners over and the ports it may use on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlbPool {
    name: String,
    /// The pre-made NLBs, then the made ones (only after [`NlbPool::with_members`]).
    nlb_arns: Vec<String>,
    /// How many of `nlb_arns` are pre-made.
    premade: usize,
    ports: PortRange,
    /// Ports of the range no claim may use.
    blocked: Vec<PortRange>,
    placement: PlacementPolicy,
    listener_quota: u32,
    managed: Option<ManagedSpec>,
    /// Whether the pool's target groups balance across zones unless a Service says otherwise.
    cross_zone: bool,
}

impl NlbPool {
    /// Whether the pool's target groups balance across zones unless a Service says otherwise
    /// (`crossZone`, default on: see [`crate::contract::cross_zone`]).
    pub fn cross_zone(&self) -> bool {
        self.cross_zone
    }

    /// The pool's name, as Services name it in `nlb.port-manager/pool`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The NLBs of the pool: the pre-made ones in configured order, then those the pool
    /// function made, as given to [`NlbPool::with_members`].
    pub fn nlb_arns(&self) -> &[String] {
        &self.nlb_arns
    }

    /// The pre-made NLBs, in configured order.
    pub fn premade_arns(&self) -> &[String] {
        &self.nlb_arns[..self.premade]
    }

    /// Whether `nlb_arn` is one the pool function made (it is a member, not pre-made).
    pub fn is_made(&self, nlb_arn: &str) -> bool {
        self.nlb_arns[self.premade..].iter().any(|a| a == nlb_arn)
    }

    /// The managed section, when the pool grows and shrinks.
    pub fn managed(&self) -> Option<&ManagedSpec> {
        self.managed.as_ref()
    }

    /// The pool with `made` (the NLBs the pool function made for it, as the claims table
    /// lists them) after its pre-made NLBs.
    pub fn with_members(&self, made: impl IntoIterator<Item = String>) -> Self {
        let mut pool = self.clone();
        pool.nlb_arns.truncate(self.premade);
        for arn in made {
            if !pool.nlb_arns.contains(&arn) {
                pool.nlb_arns.push(arn);
            }
        }
        pool
    }

    /// Listeners one NLB of the pool holds: the quota, or fewer when the range (less its
    /// blocked ports) is smaller.
    pub fn per_nlb(&self) -> u32 {
        self.listener_quota.min(self.usable_ports())
    }

    /// The range of listener ports the pool uses on each of its NLBs (less
    /// [`NlbPool::is_blocked`] ones).
    pub fn ports(&self) -> PortRange {
        self.ports
    }

    /// Whether `port` is one the pool hands out: in its range and not blocked.
    pub fn takes_port(&self, port: u16) -> bool {
        self.ports.contains(port) && !self.is_blocked(port)
    }

    /// Whether `port` is blocked (kept out of use).
    pub fn is_blocked(&self, port: u16) -> bool {
        self.blocked.iter().any(|r| r.contains(port))
    }

    /// How many ports of the range are not blocked.
    pub fn usable_ports(&self) -> u32 {
        let blocked: u32 = (self.ports.first()..=self.ports.last())
            .filter(|p| self.is_blocked(*p))
            .count() as u32;
        self.ports.len() - blocked
    }

    /// How the pool chooses an NLB.
    pub fn placement(&self) -> PlacementPolicy {
        self.placement
    }

    /// The NLB of the pool called `name` (the name in its ARN), among its members as known.
    pub fn nlb_named(&self, name: &str) -> Option<&str> {
        self.nlb_arns
            .iter()
            .find(|arn| nlb_name_of(arn) == Some(name))
            .map(String::as_str)
    }

    /// At most this many listeners on each NLB.
    pub fn listener_quota(&self) -> u32 {
        self.listener_quota
    }

    /// How many listeners the pool can hold in all.
    pub fn capacity(&self) -> u32 {
        self.per_nlb()
            .saturating_mul(u32::try_from(self.nlb_arns.len()).unwrap_or(u32::MAX))
    }
}

/// All configured pools, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSet {
    pools: BTreeMap<String, NlbPool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PoolJson {
    #[serde(default)]
    nlb_arns: Vec<String>,
    ports: String,
    #[serde(default)]
    blocked_ports: Vec<String>,
    #[serde(default)]
    placement: PlacementPolicy,
    #[serde(default = "default_quota")]
    listener_quota: u32,
    managed: Option<ManagedJson>,
    #[serde(default = "default_cross_zone")]
    cross_zone: bool,
}

fn default_cross_zone() -> bool {
    true
}

/// The name in a load balancer ARN (`...:loadbalancer/net/<name>/<id>`).
pub fn nlb_name_of(arn: &str) -> Option<&str> {
    let (_, path) = arn.split_once(":loadbalancer/")?;
    let mut parts = path.split('/');
    let _kind = parts.next()?;
    parts.next().filter(|n| !n.is_empty())
}

/// A blocked-ports entry: `7000` or `7000-7099`.
fn blocked_range(entry: &str) -> Result<PortRange, String> {
    let entry = entry.trim();
    if entry.contains('-') {
        return entry.parse();
    }
    let port = entry
        .parse::<u16>()
        .map_err(|e| format!("blocked port {entry:?} is not a port number ({e})"))?;
    PortRange::new(port, port)
}

fn default_quota() -> u32 {
    MAX_LISTENERS_PER_NLB
}

impl PoolSet {
    /// Parses and validates the `POOLS` JSON; the error names the pool and field at fault.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, PoolJson> =
            serde_json::from_str(json).map_err(|e| format!("is not valid pool JSON: {e}"))?;
        if raw.is_empty() {
            return Err("defines no pool".to_owned());
        }
        let mut seen_nlbs = BTreeSet::new();
        let mut pools = BTreeMap::new();
        for (name, p) in raw {
            crate::contract::names::validate_label(&name)
                .map_err(|e| format!("pool name {name:?}: {e}"))?;
            let ports = p
                .ports
                .parse::<PortRange>()
                .map_err(|e| format!("pool {name:?}: {e}"))?;
            if p.listener_quota == 0 || p.listener_quota > MAX_LISTENERS_PER_NLB {
                return Err(format!(
                    "pool {name:?}: listenerQuota {} must be 1..={MAX_LISTENERS_PER_NLB} \
                     (the NLB listener quota, which AWS does not raise)",
                    p.listener_quota
                ));
            }
            if p.nlb_arns.is_empty() && p.managed.is_none() {
                return Err(format!(
                    "pool {name:?}: nlbArns is empty and there is no \"managed\" section"
                ));
            }
            let blocked = p
                .blocked_ports
                .iter()
                .map(|e| blocked_range(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("pool {name:?}: blockedPorts: {e}"))?;
            let mut pool = NlbPool {
                name: name.clone(),
                premade: p.nlb_arns.len(),
                nlb_arns: Vec::new(),
                ports,
                blocked,
                placement: p.placement,
                listener_quota: p.listener_quota,
                managed: None,
                cross_zone: p.cross_zone,
            };
            if pool.usable_ports() == 0 {
                return Err(format!(
                    "pool {name:?}: blockedPorts block every port of {}",
                    pool.ports
                ));
            }
            let per_nlb = pool.per_nlb();
            let managed = p
                .managed
                .map(|m| m.validate(per_nlb))
                .transpose()
                .map_err(|e| format!("pool {name:?}: {e}"))?;
            for arn in &p.nlb_arns {
                validate_nlb_arn(arn).map_err(|e| format!("pool {name:?}: {e}"))?;
                if !seen_nlbs.insert(arn.clone()) {
                    return Err(format!(
                        "pool {name:?}: NLB {arn} is listed twice (an NLB belongs to one pool)"
                    ));
                }
            }
            pool.nlb_arns = p.nlb_arns;
            pool.managed = managed;
            pools.insert(name, pool);
        }
        Ok(Self { pools })
    }

    /// The pool called `name`.
    pub fn get(&self, name: &str) -> Option<&NlbPool> {
        self.pools.get(name)
    }

    /// The pool that lists `nlb_arn` as pre-made.
    pub fn pool_of(&self, nlb_arn: &str) -> Option<&NlbPool> {
        self.pools
            .values()
            .find(|p| p.nlb_arns.iter().any(|a| a == nlb_arn))
    }

    /// Every pool, ordered by name.
    pub fn pools(&self) -> impl Iterator<Item = &NlbPool> {
        self.pools.values()
    }

    /// Every pool's name, comma-separated, for error messages.
    pub fn names(&self) -> String {
        self.pools.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Accepts ELBv2 load balancer ARNs (`...:loadbalancer/net/<name>/<id>`). `app/` is accepted
/// too because moto labels every load balancer so; AWS itself only gives NLBs `net/`.
fn validate_nlb_arn(arn: &str) -> Result<(), String> {
    let ok = arn.starts_with("arn:")
        && arn.split(':').nth(2) == Some("elasticloadbalancing")
        && (arn.contains(":loadbalancer/net/") || arn.contains(":loadbalancer/app/"));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{arn:?} is not a load balancer ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/net/NAME/ID)"
        ))
    }
}
