//! The tags on every AWS resource the project makes: they prove ownership before any change or
//! delete, and let the sweep find what leaked.

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

/// Tag on a made NLB: its number in the pool's sequence (with the pool and cluster tags, it
/// proves which member of which pool an NLB found by name is).
pub const TAG_POOL_SEQ: &str = "nlb-port-pool/pool-seq";

/// Tag on a made NLB: the id of the pool's records (see [`crate::model::claims::PoolRecord::id`]),
/// so a pool of the same name in another stack's table never adopts or deletes it.
pub const TAG_POOL_ID: &str = "nlb-port-pool/pool-id";
