//! The annotation keys of the contract: inputs a Service sets, outputs the system writes,
//! and the finalizer.

/// Every key of the project starts with this.
pub const PREFIX: &str = "nlb.port-manager/";
/// Opt-in: `"true"` or `"false"`.
pub const AUTO_ASSIGN: &str = "nlb.port-manager/auto-assign";
/// The pool to allocate from (default [`DEFAULT_POOL`]).
pub const POOL: &str = "nlb.port-manager/pool";
/// The pool a Service uses when it names none.
pub const DEFAULT_POOL: &str = "default";
/// Health check protocol: `TCP`, `HTTP` or `HTTPS`.
pub const HC_PROTOCOL: &str = "nlb.port-manager/healthcheck-protocol";
/// Health check port: `traffic-port` or a number.
pub const HC_PORT: &str = "nlb.port-manager/healthcheck-port";
/// Seconds between health checks (5 to 300).
pub const HC_INTERVAL: &str = "nlb.port-manager/healthcheck-interval";
/// Seconds before a health check times out (2 to 120).
pub const HC_TIMEOUT: &str = "nlb.port-manager/healthcheck-timeout";
/// Successes before a target is healthy (2 to 10).
pub const HC_HEALTHY_THRESHOLD: &str = "nlb.port-manager/healthcheck-healthy-threshold";
/// Failures before a target is unhealthy (2 to 10).
pub const HC_UNHEALTHY_THRESHOLD: &str = "nlb.port-manager/healthcheck-unhealthy-threshold";
/// HTTP(S) health check path.
pub const HC_PATH: &str = "nlb.port-manager/healthcheck-path";

/// The NLB of the pool to put the Service's listeners on, by name (the name in its ARN), when
/// it must share an address with another Service; unset, the pool's placement chooses.
pub const NLB: &str = "nlb.port-manager/nlb";

/// `per-service` (the default: one set of listeners for the Service) or `per-pod` (a set of
/// listeners for each pod behind it).
pub const MODE: &str = "nlb.port-manager/mode";
/// Per-pod mode: seconds a pod may be gone from the Service (no pod of that name selected by
/// its selector: deleted, or relabelled out of it) before its ports are released (default
/// [`DEFAULT_POD_RELEASE_AFTER`]). A pod of that name selected again within them gets the same
/// ports; its target is its new IP (a gone pod has no target meanwhile).
pub const POD_RELEASE_AFTER: &str = "nlb.port-manager/pod-release-after";
/// Default of [`POD_RELEASE_AFTER`], seconds.
pub const DEFAULT_POD_RELEASE_AFTER: u32 = 10;
/// Longest [`POD_RELEASE_AFTER`], seconds.
pub const MAX_POD_RELEASE_AFTER: u32 = 86_400;

/// `"true"` takes the targets out of the Service's listeners (on a pod of a per-pod Service:
/// out of that pod's) while its claims, listeners, address and port stay: the room stops taking
/// players and keeps its address. `"false"` or removing it registers the ready targets again.
/// The status says `Disabled` meanwhile; the readiness gate is not touched (DESIGN section 3).
pub const NETWORK_DISABLED: &str = "nlb.port-manager/network-disabled";

/// A name (1-63 of a-z, 0-9, '-') for the Service's listeners that outlives the Service: a
/// Service naming the same key, in this cluster or another cluster sharing the claims table
/// (`SHARED_CLUSTERS`), takes the listeners over, with their ports and address, once the
/// Service holding them is network-disabled or deleted. Per-Service mode only.
pub const CLAIM_KEY: &str = "nlb.port-manager/claim-key";

/// Output: the first port's listener port (seed-compatible).
pub const ALLOCATED_PORT: &str = "nlb.port-manager/allocated-port";
/// Output: the first port's listener ARN (seed-compatible).
pub const LISTENER_ARN: &str = "nlb.port-manager/listener-arn";
/// Output: the first port's target group ARN (seed-compatible).
pub const TARGET_GROUP_ARN: &str = "nlb.port-manager/target-group-arn";
/// Output: `NLB_DNS:port` of the first port, what a client dials.
pub const ADDRESS: &str = "nlb.port-manager/address";
/// Output: JSON list with one [`AllocationRecord`] per listener.
pub const ALLOCATIONS: &str = "nlb.port-manager/allocations";
/// Output: `Allocated`, `Ready`, `Disabled`, `Pending: <reason>` or `Error: <reason>`.
pub const STATUS: &str = "nlb.port-manager/status";

/// Output on a per-pod Service: JSON counts of its pods (see [`PodsSummary`]).
pub const PODS: &str = "nlb.port-manager/pods";
/// Output on a pod of a per-pod Service: the pod IP registered as its listeners' target
/// (absent while none is).
pub const TARGET: &str = "nlb.port-manager/target";

/// Output on a pod of a per-pod Service: whose outputs the pod carries, as `name/uid` of that
/// Service (see [`service_ref`]). Two per-pod Services may select the same pods (a TCP and a
/// UDP Service, a blue/green move); the first to write a pod's outputs owns them, and the
/// others leave the pod alone (their addresses for it are in their own [`PODS`] summary).
pub const SERVICE: &str = "nlb.port-manager/service";

/// The finalizer that holds a Service's deletion until its listeners are released.
pub const FINALIZER: &str = "nlb.port-manager/release";

/// Every output key, so a release can remove exactly what the system wrote.
pub const OUTPUT_KEYS: [&str; 9] = [
    ALLOCATED_PORT,
    LISTENER_ARN,
    TARGET_GROUP_ARN,
    ADDRESS,
    ALLOCATIONS,
    STATUS,
    PODS,
    TARGET,
    SERVICE,
];

/// The value of [`SERVICE`] naming the Service `name` with `uid`. The uid tells a Service from
/// a later one of the same name; the name lets a reader (and a run judging whether the owner
/// is still there) find it.
pub fn service_ref(name: &str, uid: &str) -> String {
    format!("{name}/{uid}")
}

/// The (name, uid) a [`SERVICE`] value names; `None` when it is not `name/uid`.
pub fn parse_service_ref(value: &str) -> Option<(&str, &str)> {
    let (name, uid) = value.split_once('/')?;
    (!name.is_empty() && !uid.is_empty() && !uid.contains('/')).then_some((name, uid))
}
