//! Target group names and the tags on every resource the project makes.

use sha2::{Digest, Sha256};

use crate::claims::Owner;
use crate::service_model::ListenerKey;

/// Prefix of every target group name the project makes.
pub const TARGET_GROUP_PREFIX: &str = "npp-";
/// Tag marking a resource as the project's.
pub const TAG_MANAGED: &str = "nlb-port-pool/managed";
/// Tag: the cluster.
pub const TAG_CLUSTER: &str = "nlb-port-pool/cluster";
/// Tag: the Service's namespace.
pub const TAG_NAMESPACE: &str = "nlb-port-pool/namespace";
/// Tag: the Service's name.
pub const TAG_SERVICE: &str = "nlb-port-pool/service";
/// Tag: the Service's uid, which decides ownership.
pub const TAG_SERVICE_UID: &str = "nlb-port-pool/service-uid";
/// Tag: the pod, on the listener and target group of a pod of a per-pod Service.
pub const TAG_POD: &str = "nlb-port-pool/pod";
/// Tag: the pool.
pub const TAG_POOL: &str = "nlb-port-pool/pool";
/// Tag: the listener key within the Service (e.g. `7777-tcp`), so a leftover can be matched
/// to the claim it should have.
pub const TAG_LISTENER: &str = "nlb-port-pool/listener";

/// The target group name of one listener of one Service: `npp-` and 28 hex digits of a
/// SHA-256 over cluster, namespace, name, uid and listener key. Unique per account and region
/// (names must be), at most 32 characters, and never the bare Service name. The uid is in the
/// hash so a Service made again under the same name never meets its predecessor's group.
pub fn target_group_name(owner: &Owner, key: &ListenerKey) -> String {
    let mut hasher = Sha256::new();
    for part in [
        owner.key.cluster.as_str(),
        owner.key.namespace.as_str(),
        owner.key.name.as_str(),
        owner.uid.as_str(),
        key.as_str(),
    ] {
        // Length-prefixed so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    // A pod's group: the pod name too (the Service's own groups keep the names they had).
    if let Some(pod) = &owner.pod {
        hasher.update(b"pod");
        hasher.update((pod.len() as u64).to_be_bytes());
        hasher.update(pod.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TARGET_GROUP_PREFIX}{}", &hex[..28])
}

/// The name in a target group's ARN (`...:targetgroup/<name>/<id>`).
pub fn target_group_name_in(arn: &str) -> Option<&str> {
    let (_, resource) = arn.rsplit_once(':')?;
    let mut parts = resource.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("targetgroup"), Some(name), Some(_id), None) => Some(name),
        _ => None,
    }
}

/// The tags of a Service's listener or target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTags {
    /// The owner.
    pub owner: Owner,
    /// The pool.
    pub pool: String,
    /// Which listener of the Service.
    pub listener: ListenerKey,
}

impl ResourceTags {
    /// As key-value pairs.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (TAG_MANAGED, "true".to_owned()),
            (TAG_CLUSTER, self.owner.key.cluster.clone()),
            (TAG_NAMESPACE, self.owner.key.namespace.clone()),
            (TAG_SERVICE, self.owner.key.name.clone()),
            (TAG_SERVICE_UID, self.owner.uid.clone()),
            (TAG_POOL, self.pool.clone()),
            (TAG_LISTENER, self.listener.as_str().to_owned()),
        ];
        if let Some(pod) = &self.owner.pod {
            pairs.push((TAG_POD, pod.clone()));
        }
        pairs
    }
}

/// Whether a resource's tags mark it as the project's in `cluster` (what the sweep, and
/// `kubectl nlb-pool doctor`, may call a leak when no claim accounts for it).
pub fn owned_by_cluster(tags: &std::collections::HashMap<String, String>, cluster: &str) -> bool {
    tags.get(TAG_MANAGED).map(String::as_str) == Some("true")
        && tags.get(TAG_CLUSTER).map(String::as_str) == Some(cluster)
}

/// Whether a resource's tags mark it as the project's and owned by the Service with `uid`.
pub fn owned_by(tags: Option<&std::collections::HashMap<String, String>>, uid: &str) -> bool {
    tags.is_some_and(|t| {
        t.get(TAG_MANAGED).map(String::as_str) == Some("true")
            && t.get(TAG_SERVICE_UID).map(String::as_str) == Some(uid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ServiceKey;
    use crate::protocol::ListenerProtocol;

    #[test]
    fn a_target_group_arn_names_its_group() {
        let arn = "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/npp-0a1b/50dc6c495c0c9188";
        assert_eq!(target_group_name_in(arn), Some("npp-0a1b"));
        let listener = "arn:aws:elasticloadbalancing:us-west-2:1:listener/net/a/1/2";
        assert_eq!(target_group_name_in(listener), None);
        assert_eq!(target_group_name_in("targetgroup/x/1"), None, "not an ARN");
    }

    fn owner(ns: &str, name: &str, uid: &str) -> Owner {
        Owner {
            key: ServiceKey {
                cluster: "c".into(),
                namespace: ns.into(),
                name: name.into(),
            },
            uid: uid.into(),
            pod: None,
        }
    }

    #[test]
    fn names_are_short_distinct_and_stable() {
        let key = ListenerKey::new(7777, ListenerProtocol::Tcp);
        let a = target_group_name(&owner("a", "room", "u1"), &key);
        assert_eq!(a.len(), 32);
        assert!(a.starts_with(TARGET_GROUP_PREFIX));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_eq!(a, target_group_name(&owner("a", "room", "u1"), &key));
        assert_ne!(
            a,
            target_group_name(&owner("b", "room", "u1"), &key),
            "namespace"
        );
        assert_ne!(a, target_group_name(&owner("a", "room", "u2"), &key), "uid");
        assert_ne!(
            a,
            target_group_name(&owner("a", "roo", "mu1"), &key),
            "boundaries"
        );
        let udp = ListenerKey::new(7777, ListenerProtocol::Udp);
        assert_ne!(
            a,
            target_group_name(&owner("a", "room", "u1"), &udp),
            "listener"
        );
        let pod = |name: &str| Owner {
            pod: Some(name.into()),
            ..owner("a", "room", "u1")
        };
        let p0 = target_group_name(&pod("room-0"), &key);
        assert_eq!(p0.len(), 32);
        assert_ne!(a, p0, "a pod's group is not the Service's");
        assert_ne!(p0, target_group_name(&pod("room-1"), &key), "pod");
        assert_eq!(p0, target_group_name(&pod("room-0"), &key), "stable");
    }

    #[test]
    fn ownership_needs_both_tags() {
        use std::collections::HashMap;
        let tags = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(owned_by(
            Some(&tags(&[(TAG_MANAGED, "true"), (TAG_SERVICE_UID, "u1")])),
            "u1"
        ));
        assert!(!owned_by(
            Some(&tags(&[(TAG_MANAGED, "true"), (TAG_SERVICE_UID, "u2")])),
            "u1"
        ));
        assert!(!owned_by(Some(&tags(&[(TAG_SERVICE_UID, "u1")])), "u1"));
        assert!(!owned_by(None, "u1"));
    }

    #[test]
    fn tags_carry_ownership() {
        let tags = ResourceTags {
            owner: owner("games", "room", "u1"),
            pool: "default".into(),
            listener: ListenerKey::new(7777, ListenerProtocol::Udp),
        };
        let pairs = tags.pairs();
        assert!(pairs.contains(&(TAG_MANAGED, "true".into())));
        assert!(pairs.contains(&(TAG_SERVICE_UID, "u1".into())));
        assert!(pairs.contains(&(TAG_LISTENER, "7777-udp".into())));
        assert_eq!(pairs.len(), 7);
    }
}
