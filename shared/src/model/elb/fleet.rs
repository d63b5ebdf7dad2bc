//! Making and deleting the NLBs of managed pools (ELBv2), behind a trait: only the pool
//! function calls these, and IAM lets it touch only NLBs named `npp-*` with the project's tags.

use async_trait::async_trait;

use super::ElbError;
use crate::model::pool::{IpAddressType, Scheme, SubnetPlacement};

/// What a new NLB should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlbSpec {
    /// Its name, from [`crate::model::pool::managed_nlb_name`].
    pub name: String,
    /// Internet-facing or internal.
    pub scheme: Scheme,
    /// One subnet per zone, each with an Elastic IP or none.
    pub subnets: Vec<SubnetPlacement>,
    /// Its security groups (none: none).
    pub security_groups: Vec<String>,
    /// IPv4 or dual-stack.
    pub ip_address_type: IpAddressType,
    /// Its tags: the project's (managed, cluster, pool, sequence) and the user's.
    pub tags: Vec<(String, String)>,
}

/// Where AWS says an NLB is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NlbStatus {
    /// Being made: it forwards nothing yet.
    Provisioning,
    /// Forwarding.
    Active,
    /// AWS could not make it.
    Failed(String),
    /// Active but impaired, or a state this code does not know.
    Other(String),
}

/// An NLB as ELBv2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlbInfo {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its state.
    pub status: NlbStatus,
}

/// The ELBv2 calls that make, watch and delete NLBs.
#[async_trait]
pub trait NlbFleet: Send + Sync {
    /// Makes the NLB and returns its ARN. When an NLB of that name exists already (an earlier
    /// attempt that was not recorded), returns that one's ARN: the caller proves by its tags
    /// that it is the member it means before adopting it. The region's NLB quota reached is an
    /// error of kind [`super::ElbErrorKind::TooManyLoadBalancers`].
    async fn create_nlb(&self, spec: &NlbSpec) -> Result<String, ElbError>;

    /// How many Network Load Balancers the region holds (every one, whoever made it: what
    /// AWS's "Network Load Balancers per Region" quota counts).
    async fn count_nlbs(&self) -> Result<usize, ElbError>;

    /// The NLB called `name`, if it exists.
    async fn nlb_named(&self, name: &str) -> Result<Option<NlbInfo>, ElbError>;

    /// The NLBs among `arns` that exist.
    async fn describe_nlbs(&self, arns: &[String]) -> Result<Vec<NlbInfo>, ElbError>;

    /// Turns cross-zone load balancing on or off.
    async fn set_cross_zone(&self, nlb_arn: &str, enabled: bool) -> Result<(), ElbError>;

    /// Deletes an NLB (AWS deletes its listeners with it); one already gone counts as deleted.
    async fn delete_nlb(&self, nlb_arn: &str) -> Result<(), ElbError>;
}
