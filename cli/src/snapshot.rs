//! What the tool read, as plain data: the reports are computed from a [`Snapshot`] alone, so
//! they are tested without any server (see `status` and `doctor`), and the reading
//! (`collect`) is tested against the bed.

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything one `status` or `doctor` run read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// When it was read (seconds since the epoch).
    pub taken_at: i64,
    /// The cluster (`CLUSTER_NAME`), as tags and claims name it.
    pub cluster: String,
    /// The pools of `POOLS`, with what each NLB holds.
    pub pools: Vec<PoolSnapshot>,
    /// The Services that opted in, hold the finalizer or carry output annotations.
    pub services: Vec<ServiceView>,
    /// The pods of per-pod Services.
    pub pods: Vec<PodView>,
    /// What only `doctor` reads.
    pub deep: Option<DeepSnapshot>,
}

/// One pool.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolSnapshot {
    /// Its name.
    pub name: String,
    /// Whether it has a `managed` section.
    pub managed: bool,
    /// `balanced`, `pack` or `spread`.
    pub placement: String,
    /// Its port range, `first-last`.
    pub ports: String,
    /// Ports of the range not blocked.
    pub usable_ports: u32,
    /// Listeners per NLB.
    pub quota: u32,
    /// Its NLBs, pre-made and made.
    pub nlbs: Vec<NlbSnapshot>,
    /// Services waiting for its managed NLBs to grow (the pool's record).
    pub waiting: usize,
}

/// One NLB of a pool.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NlbSnapshot {
    /// Its ARN.
    pub arn: String,
    /// Its name (from the ARN).
    pub name: String,
    /// Its DNS name; `None` when ELBv2 does not know the NLB.
    pub dns: Option<String>,
    /// Whether the pool function made it.
    pub made: bool,
    /// The claims table's state of a made NLB (`provisioning`, `active`, `draining`).
    pub state: Option<String>,
    /// Ports claimed on it.
    pub claimed: usize,
    /// Every listener on it, whoever made it (`None` when the NLB does not exist).
    pub listeners: Option<usize>,
}

/// A Service the system knows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its creation (seconds since the epoch).
    pub created: i64,
    /// `nlb.port-manager/auto-assign` is `"true"`.
    pub opted_in: bool,
    /// In per-pod mode.
    pub per_pod: bool,
    /// Its `nlb.port-manager/status`.
    pub status: Option<String>,
    /// Its `nlb.port-manager/address`.
    pub address: Option<String>,
    /// It holds the `nlb.port-manager/release` finalizer.
    pub finalizer: bool,
    /// Since when it is being deleted.
    pub deleting_since: Option<i64>,
}

/// A pod of a per-pod Service.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PodView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The per-pod Service it belongs to.
    pub service: String,
    /// Its creation (seconds since the epoch).
    pub created: i64,
    /// Its `nlb.port-manager/status`.
    pub status: Option<String>,
    /// Its `nlb.port-manager/address`.
    pub address: Option<String>,
}

/// What `doctor` reads besides: listeners, target groups and claims in detail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeepSnapshot {
    /// Per NLB that exists: its listeners.
    pub listeners: BTreeMap<String, Vec<ListenerView>>,
    /// Per NLB: who holds which port.
    pub holders: BTreeMap<String, Vec<HolderView>>,
    /// The project's target groups (`npp-*`).
    pub target_groups: Vec<TargetGroupView>,
    /// The claims table's identity item.
    pub identity: Option<IdentityView>,
    /// The uid of the cluster's `kube-system` namespace.
    pub kube_system_uid: Option<String>,
    /// The stack id the functions run with (`STACK_ID`), when given.
    pub stack_id: Option<String>,
    /// Messages in the dead-letter queue, when its URL was given.
    pub dead_letters: Option<u64>,
}

/// A listener on a pool's NLB.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListenerView {
    /// Its ARN.
    pub arn: String,
    /// Its port.
    pub port: u16,
    /// Tagged as this cluster's (`nlb-port-pool/managed`, `nlb-port-pool/cluster`); read only
    /// for a listener its port's holder does not account for.
    pub ours: bool,
    /// The target group it forwards to.
    pub target_group: Option<String>,
}

impl ListenerView {
    /// The name of the target group it forwards to.
    pub fn target_group_name(&self) -> Option<&str> {
        self.target_group
            .as_deref()
            .and_then(nlb_port_pool::model::elb::target_group_name_in)
    }
}

/// A port item: who holds the port.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HolderView {
    /// The port.
    pub port: u16,
    /// The holder's uid.
    pub uid: String,
    /// The holder's namespace/name as the claim recorded it.
    pub service: String,
    /// The name of the target group made for the claim (a hash of owner and listener key):
    /// a listener forwarding to it is the holder's.
    pub target_group_name: String,
    /// When it was claimed (seconds since the epoch).
    pub claimed_at: i64,
}

/// One claim (owner record), as `get` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClaimView {
    /// The listener key (`7777-tcp`).
    pub key: String,
    /// The pod, for a per-pod claim.
    pub pod: Option<String>,
    /// The NLB.
    pub nlb_arn: String,
    /// The port.
    pub port: u16,
    /// `claimed` or `active`.
    pub state: String,
    /// The listener, once made.
    pub listener_arn: Option<String>,
    /// The target group, once made.
    pub target_group_arn: Option<String>,
    /// When it was claimed.
    pub claimed_at: i64,
}

/// A target group of the project's name prefix.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetGroupView {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Tagged as this cluster's.
    pub ours: bool,
}

/// The claims table's identity item.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdentityView {
    /// Cluster name.
    pub cluster_name: String,
    /// The `kube-system` uid recorded.
    pub cluster_uid: String,
    /// The stack recorded.
    pub stack_id: String,
}
