//! The `managed` section of a pool: NLBs the pool function makes when the pool runs low and
//! deletes when they have been idle long enough (README "Elastic pools").
//!
//! ```json
//! "managed": {"min": 1, "max": 10, "spare": 50, "retireAfterSeconds": 3600,
//!             "scheme": "internet-facing", "subnets": ["subnet-0a1b", "subnet-2c3d"],
//!             "securityGroups": [], "ipAddressType": "ipv4", "crossZone": false,
//!             "tags": {"team": "games"}}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::limits::MAX_LISTENERS_PER_NLB;

/// Prefix of every NLB name the pool function makes (IAM allows it to make and delete only
/// `loadbalancer/net/npp-*`, and only with the project's tags).
pub const MANAGED_NLB_PREFIX: &str = "npp-";

/// The longest NLB name AWS accepts.
const MAX_NLB_NAME: usize = 32;

/// Most extra tags on a made NLB: AWS allows 50 per resource, the project uses a few.
const MAX_EXTRA_TAGS: usize = 40;

/// Whether a made NLB faces the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Public addresses.
    InternetFacing,
    /// Addresses in the VPC only.
    Internal,
}

impl Scheme {
    /// ELBv2's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InternetFacing => "internet-facing",
            Self::Internal => "internal",
        }
    }
}

/// The IP address type of a made NLB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpAddressType {
    /// IPv4 only.
    Ipv4,
    /// IPv4 and IPv6.
    Dualstack,
}

impl IpAddressType {
    /// ELBv2's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Dualstack => "dualstack",
        }
    }
}

/// A subnet of a made NLB, with the Elastic IP it takes there, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlacement {
    /// `subnet-...`.
    pub subnet_id: String,
    /// `eipalloc-...`: the NLB's fixed public address in that zone.
    pub allocation_id: Option<String>,
}

/// What the pool function may make for a pool, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedSpec {
    /// NLBs kept made even when empty.
    pub min: u32,
    /// Most NLBs made (pre-made NLBs are not counted).
    pub max: u32,
    /// Free listeners kept ready: fewer, and the pool grows.
    pub spare: u32,
    /// How long a made NLB stays without any claim before it is retired.
    pub retire_after: Duration,
    /// The scheme of made NLBs.
    pub scheme: Scheme,
    /// Their subnets (one per zone).
    pub subnets: Vec<SubnetPlacement>,
    /// Their security groups (none: the NLB has none).
    pub security_groups: Vec<String>,
    /// Their IP address type.
    pub ip_address_type: IpAddressType,
    /// Whether they balance across zones.
    pub cross_zone: bool,
    /// Extra tags (the user's: cost allocation and the like).
    pub tags: BTreeMap<String, String>,
}

/// The JSON form, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ManagedJson {
    #[serde(default)]
    min: u32,
    max: u32,
    #[serde(default = "default_spare")]
    spare: u32,
    #[serde(default = "default_retire_after")]
    retire_after_seconds: u64,
    scheme: Option<String>,
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    ip_address_type: Option<String>,
    /// Made NLBs balance across zones unless the section says otherwise.
    #[serde(default = "default_cross_zone")]
    cross_zone: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn default_cross_zone() -> bool {
    true
}

fn default_spare() -> u32 {
    MAX_LISTENERS_PER_NLB
}
fn default_retire_after() -> u64 {
    3600
}

/// The shortest retirement wait: less would retire an NLB between two bursts of rooms.
const MIN_RETIRE_AFTER_SECONDS: u64 = 60;

impl ManagedJson {
    /// Validates the section; `per_nlb` is how many listeners one NLB of the pool holds. The
    /// error names the field.
    pub(super) fn validate(self, per_nlb: u32) -> Result<ManagedSpec, String> {
        if self.max == 0 {
            return Err("managed.max must be at least 1 (leave out \"managed\" for none)".into());
        }
        if self.min > self.max {
            return Err(format!(
                "managed.min {} is above managed.max {}",
                self.min, self.max
            ));
        }
        let most = u64::from(self.max) * u64::from(per_nlb);
        if u64::from(self.spare) > most {
            return Err(format!(
                "managed.spare {} can never be kept free: {} NLBs hold {most} listeners",
                self.spare, self.max
            ));
        }
        if self.retire_after_seconds < MIN_RETIRE_AFTER_SECONDS {
            return Err(format!(
                "managed.retireAfterSeconds {} is below {MIN_RETIRE_AFTER_SECONDS}",
                self.retire_after_seconds
            ));
        }
        let scheme = match self.scheme.as_deref() {
            None | Some("internet-facing") => Scheme::InternetFacing,
            Some("internal") => Scheme::Internal,
            Some(other) => {
                return Err(format!(
                    "managed.scheme {other:?} is not internet-facing or internal"
                ));
            }
        };
        let ip_address_type = match self.ip_address_type.as_deref() {
            None | Some("ipv4") => IpAddressType::Ipv4,
            Some("dualstack") => IpAddressType::Dualstack,
            Some(other) => {
                return Err(format!(
                    "managed.ipAddressType {other:?} is not ipv4 or dualstack"
                ));
            }
        };
        let subnets = subnets(&self.subnets)?;
        let mut groups = BTreeSet::new();
        for g in &self.security_groups {
            if !is_aws_id(g, "sg-") {
                return Err(format!(
                    "managed.securityGroups: {g:?} is not a security group id (sg-...)"
                ));
            }
            if !groups.insert(g) {
                return Err(format!("managed.securityGroups: {g} is listed twice"));
            }
        }
        validate_tags(&self.tags)?;
        Ok(ManagedSpec {
            min: self.min,
            max: self.max,
            spare: self.spare,
            retire_after: Duration::from_secs(self.retire_after_seconds),
            scheme,
            subnets,
            security_groups: self.security_groups,
            ip_address_type,
            cross_zone: self.cross_zone,
            tags: self.tags,
        })
    }
}

/// `subnet-...` or `subnet-...:eipalloc-...`; every subnet or none has an Elastic IP (ELBv2
/// takes subnet mappings for all or none).
fn subnets(raw: &[String]) -> Result<Vec<SubnetPlacement>, String> {
    if raw.is_empty() {
        return Err("managed.subnets is empty (name a subnet per zone)".into());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let (subnet, eip) = match entry.split_once(':') {
            Some((s, e)) => (s, Some(e)),
            None => (entry.as_str(), None),
        };
        if !is_aws_id(subnet, "subnet-") {
            return Err(format!(
                "managed.subnets: {entry:?} is not subnet-ID or subnet-ID:eipalloc-ID"
            ));
        }
        if let Some(e) = eip
            && !is_aws_id(e, "eipalloc-")
        {
            return Err(format!(
                "managed.subnets: {entry:?}: {e:?} is not an Elastic IP allocation id (eipalloc-...)"
            ));
        }
        if !seen.insert(subnet) {
            return Err(format!("managed.subnets: {subnet} is listed twice"));
        }
        out.push(SubnetPlacement {
            subnet_id: subnet.to_owned(),
            allocation_id: eip.map(str::to_owned),
        });
    }
    let with_eip = out.iter().filter(|s| s.allocation_id.is_some()).count();
    if with_eip != 0 && with_eip != out.len() {
        return Err(
            "managed.subnets: give every subnet an Elastic IP (subnet:eipalloc) or none".into(),
        );
    }
    Ok(out)
}

fn is_aws_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        (8..=17).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > MAX_EXTRA_TAGS {
        return Err(format!(
            "managed.tags: {} tags, at most {MAX_EXTRA_TAGS}",
            tags.len()
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(format!("managed.tags: key {k:?} must be 1-128 characters"));
        }
        if k.starts_with("nlb-port-pool/") || k.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!(
                "managed.tags: key {k:?} is reserved (nlb-port-pool/ and aws: are not the user's)"
            ));
        }
        if v.chars().count() > 256 {
            return Err(format!(
                "managed.tags: the value of {k:?} is over 256 characters"
            ));
        }
    }
    Ok(())
}

/// The name of the `seq`-th NLB made for `pool` whose records carry `pool_id`:
/// `npp-<pool>-<hash>-<seq>`, at most 32 characters. The pool id (random, written with the
/// pool's first member) keeps two stacks' or clusters' pools of the same name apart in one
/// account (NLB names are unique per account and region); the sequence comes from the pool's
/// conditional counter, so two growers racing for one NLB ask for the same name.
pub fn managed_nlb_name(pool: &str, pool_id: &str, seq: u64) -> String {
    let mut hasher = Sha256::new();
    for part in [pool, pool_id] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hex: String = hasher.finalize()[..3]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tail = format!("-{hex}-{seq}");
    let room = MAX_NLB_NAME - MANAGED_NLB_PREFIX.len() - tail.len();
    // Pool names are DNS labels (a-z, 0-9, '-'); a cut one must not end in '-'.
    let short: String = pool.chars().take(room).collect();
    format!("{MANAGED_NLB_PREFIX}{}{tail}", short.trim_end_matches('-'))
}

#[cfg(test)]
#[path = "managed_tests.rs"]
mod tests;
