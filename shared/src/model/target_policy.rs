//! Which EndpointSlices and addresses may become targets of an internet-facing NLB.
//!
//! Anyone allowed to write EndpointSlices in a namespace can label one with a Service's name.
//! Read blindly, a hand-written slice listing a node's kubelet port or another tenant's pod
//! would be put behind the Service's public listener. So a slice counts only when its manager
//! (the `endpointslice.kubernetes.io/managed-by` label) is the EndpointSlice controller or one
//! the operator allows, and, when the operator lists CIDRs, only its addresses inside them.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

pub use crate::model::targets::MANAGED_BY_LABEL;
use crate::model::targets::SliceView;

/// The manager the EndpointSlice controller writes on the slices it makes from a Service's
/// selector and its pods: the only one trusted by default.
pub const CONTROLLER_MANAGER: &str = "endpointslice-controller.k8s.io";

/// The variable naming further trusted managers, comma-separated.
pub const TRUSTED_MANAGERS_VAR: &str = "TRUSTED_ENDPOINTSLICE_MANAGERS";

/// The variable listing the IPv4 CIDRs targets must be inside, comma-separated.
pub const TARGET_CIDRS_VAR: &str = "TARGET_CIDRS";

/// Addresses named one by one in an Event note; more are counted.
const NOTE_ADDRESSES: usize = 10;

/// An IPv4 network, `address/prefix`, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The network `network/prefix`; fails when `prefix` exceeds 32 or host bits are set.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Self, String> {
        if prefix > 32 {
            return Err(format!("prefix /{prefix} is longer than 32"));
        }
        let mask = mask(prefix);
        let bits = u32::from(network);
        if bits & !mask != 0 {
            return Err(format!(
                "{network}/{prefix} has host bits set (the network is {}/{prefix})",
                Ipv4Addr::from(bits & mask)
            ));
        }
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    /// Strict: `a.b.c.d/n` in decimal, no leading zeros, no spaces, no host bits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not address/prefix (e.g. 10.0.0.0/16)"))?;
        // Rust's parser refuses leading zeros (which some read as octal) and anything but
        // four decimal octets.
        let network: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{s:?}: {address:?} is not an IPv4 address"))?;
        let digits_only = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit());
        let canonical = prefix == "0" || !prefix.starts_with('0');
        let prefix = match prefix.parse::<u8>() {
            Ok(p) if digits_only && canonical && p <= 32 => p,
            _ => {
                return Err(format!(
                    "{s:?}: prefix {prefix:?} is not a number from 0 to 32"
                ));
            }
        };
        Self::new(network, prefix).map_err(|e| format!("{s:?}: {e}"))
    }
}

/// Checks a Kubernetes label value: at most 63 of letters, digits, `-`, `_` and `.`, starting
/// and ending with a letter or digit.
fn validate_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!("{s:?} must be 1 to 63 characters"));
    }
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !s.chars().all(inner) {
        return Err(format!(
            "{s:?} may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return Err(format!("{s:?} must start and end with a letter or digit"));
    }
    Ok(())
}

/// Splits a comma-separated list, refusing empty entries (a stray comma is a typo, not "none").
fn entries(raw: &str) -> Result<Vec<&str>, String> {
    raw.split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, e)| match e {
            "" => Err(format!("entry {} is empty (stray comma?)", i + 1)),
            e => Ok(e),
        })
        .collect()
}

/// Parses `TRUSTED_ENDPOINTSLICE_MANAGERS`: label values, comma-separated.
pub fn parse_managers(raw: &str) -> Result<Vec<String>, String> {
    entries(raw)?
        .into_iter()
        .map(|m| {
            validate_label_value(m)
                .map(|()| m.to_owned())
                .map_err(|e| format!("manager {e} (a label value)"))
        })
        .collect()
}

/// Parses `TARGET_CIDRS`: IPv4 CIDRs, comma-separated.
pub fn parse_cidrs(raw: &str) -> Result<Vec<Ipv4Cidr>, String> {
    entries(raw)?.into_iter().map(str::parse).collect()
}

/// The slices and addresses trusted as targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    managers: BTreeSet<String>,
    cidrs: Vec<Ipv4Cidr>,
}

impl Default for TargetPolicy {
    /// Only the EndpointSlice controller's slices, any address.
    fn default() -> Self {
        Self::new(Vec::<String>::new(), vec![])
    }
}

impl TargetPolicy {
    /// Trusts the EndpointSlice controller and `extra_managers`; when `cidrs` is not empty,
    /// only addresses inside one of them.
    pub fn new(
        extra_managers: impl IntoIterator<Item = impl Into<String>>,
        cidrs: Vec<Ipv4Cidr>,
    ) -> Self {
        let mut managers: BTreeSet<String> = extra_managers.into_iter().map(Into::into).collect();
        managers.insert(CONTROLLER_MANAGER.to_owned());
        Self { managers, cidrs }
    }

    /// Whether a slice with this manager label is trusted.
    pub fn trusts(&self, manager: Option<&str>) -> bool {
        manager.is_some_and(|m| self.managers.contains(m))
    }

    /// Whether `ip` may be a target.
    pub fn allows(&self, ip: Ipv4Addr) -> bool {
        self.cidrs.is_empty() || self.cidrs.iter().any(|c| c.contains(ip))
    }

    /// Keeps the trusted slices, without their addresses outside the CIDRs, and says what was
    /// left out. A slice with no address at all is dropped silently: it adds no target. (A
    /// slice with only endpoints not ready still names pods, which per-pod mode allocates.)
    pub fn screen(&self, slices: Vec<SliceView>) -> Screened {
        let mut screened = Screened::default();
        for mut slice in slices {
            if slice.ready.is_empty() && slice.pods.is_empty() {
                continue;
            }
            if !self.trusts(slice.managed_by.as_deref()) {
                screened.rejections.push(self.untrusted(&slice));
                continue;
            }
            let (inside, outside): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) =
                std::mem::take(&mut slice.ready)
                    .into_iter()
                    .partition(|ip| self.allows(*ip));
            if !outside.is_empty() {
                screened.rejections.push(self.outside(&slice.name, outside));
            }
            slice.ready = inside;
            slice.pods.retain(|p| self.allows(p.ip));
            screened.trusted.push(slice);
        }
        screened
    }

    fn untrusted(&self, slice: &SliceView) -> Rejection {
        let manager = match &slice.managed_by {
            Some(m) => format!("is managed by {m:?}"),
            None => format!("has no {MANAGED_BY_LABEL} label"),
        };
        let extra: Vec<&str> = self
            .managers
            .iter()
            .map(String::as_str)
            .filter(|m| *m != CONTROLLER_MANAGER)
            .collect();
        let allowed = match extra.as_slice() {
            [] => format!(" ({TRUSTED_MANAGERS_VAR} allows no other)"),
            more => format!(" or {TRUSTED_MANAGERS_VAR} ({})", more.join(", ")),
        };
        Rejection {
            slice: slice.name.clone(),
            reason: UNTRUSTED_SLICE,
            note: format!(
                "EndpointSlice {} {manager}, not by {CONTROLLER_MANAGER}{allowed}: its {} ready \
                 address(es) are not registered as targets",
                slice.name,
                slice.ready.len()
            ),
            fingerprint: format!(
                "{UNTRUSTED_SLICE}/{}/{}",
                slice.name,
                slice.managed_by.as_deref().unwrap_or("")
            ),
        }
    }

    fn outside(&self, slice: &str, outside: Vec<Ipv4Addr>) -> Rejection {
        let listed = ListedAddresses::of(outside);
        let cidrs: Vec<String> = self.cidrs.iter().map(ToString::to_string).collect();
        Rejection {
            slice: slice.to_owned(),
            reason: OUTSIDE_CIDRS,
            note: format!(
                "EndpointSlice {slice}: address(es) {} are outside {TARGET_CIDRS_VAR} ({}) and \
                 are not registered as targets",
                listed.named,
                cidrs.join(", ")
            ),
            fingerprint: format!("{OUTSIDE_CIDRS}/{slice}/{}", listed.all),
        }
    }
}

/// Addresses left out of the targets, as a Rejection says them.
pub(crate) struct ListedAddresses {
    /// The first few, comma-separated, then how many more: for the Event note.
    pub named: String,
    /// All of them, for the fingerprint (a changed set is reported again).
    pub all: String,
}

impl ListedAddresses {
    /// `addresses`, sorted and without repeats.
    pub fn of(mut addresses: Vec<Ipv4Addr>) -> Self {
        addresses.sort();
        addresses.dedup();
        let mut named: Vec<String> = addresses
            .iter()
            .take(NOTE_ADDRESSES)
            .map(ToString::to_string)
            .collect();
        if addresses.len() > NOTE_ADDRESSES {
            named.push(format!("and {} more", addresses.len() - NOTE_ADDRESSES));
        }
        let all: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        Self {
            named: named.join(", "),
            all: all.join(","),
        }
    }
}

/// The Event reason of a slice whose manager is not trusted.
pub const UNTRUSTED_SLICE: &str = "UntrustedEndpointSlice";

/// The Event reason of ready addresses outside `TARGET_CIDRS`.
pub const OUTSIDE_CIDRS: &str = "TargetOutsideCidrs";

/// What [`TargetPolicy::screen`] kept and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screened {
    /// The trusted slices, holding only allowed addresses.
    pub trusted: Vec<SliceView>,
    /// What was left out and why, one per slice.
    pub rejections: Vec<Rejection>,
}

/// A slice, or some of its addresses, left out of the targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The slice's name.
    pub slice: String,
    /// The Event reason, [`UNTRUSTED_SLICE`] or [`OUTSIDE_CIDRS`].
    pub reason: &'static str,
    /// The Event note: the slice, and the manager or the addresses and CIDRs.
    pub note: String,
    /// Identifies what is reported, so the same rejection is reported once (see
    /// [`crate::model::cluster::Notice::once`]) and a changed one again.
    pub fingerprint: String,
}

#[cfg(test)]
#[path = "target_policy_tests.rs"]
mod tests;
