//! Target group names and the tags on every resource the project makes.

use sha2::{Digest, Sha256};

use crate::contract::service_model::ListenerKey;
use crate::contract::tags::{
    TAG_CLUSTER, TAG_LISTENER, TAG_MANAGED, TAG_NAMESPACE, TAG_POD, TAG_POOL, TAG_SERVICE,
    TAG_SERVICE_UID,
};
use crate::model::claims::Owner;

/// Prefix of every target group name the project makes.
pub const TARGET_GROUP_PREFIX: &str = "npp-";

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
#[path = "naming_tests.rs"]
mod tests;
