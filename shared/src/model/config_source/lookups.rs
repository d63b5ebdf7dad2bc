//! The AWS reads the configuration needs, behind a trait ([`ConfigLookups`]), and what they
//! answer.

use async_trait::async_trait;

/// Names one DescribeLoadBalancers call takes (AWS refuses more).
pub const MAX_NAMES_PER_CALL: usize = 20;

/// A load balancer found by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLoadBalancer {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `network`, `application` or `gateway`.
    pub kind: String,
}

/// What `eks:DescribeCluster` says of a cluster, as far as reaching its API goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterEndpoint {
    /// The API server URL (none while the cluster is being made).
    pub endpoint: Option<String>,
    /// The CA bundle, base64 PEM (`certificateAuthority.data`).
    pub ca_data: Option<String>,
    /// `ACTIVE`, `CREATING`, ...
    pub status: Option<String>,
}

/// The AWS reads behind the configuration; errors are messages naming the call and its
/// target.
#[async_trait]
pub trait ConfigLookups: Send + Sync {
    /// The value of the SSM parameter `name`.
    async fn parameter(&self, name: &str) -> Result<String, String>;
    /// The load balancers called `names` (at most [`MAX_NAMES_PER_CALL`]); a name that names
    /// none is left out of the answer.
    async fn load_balancers(&self, names: &[String]) -> Result<Vec<NamedLoadBalancer>, String>;
    /// The cluster `name`'s endpoint and CA.
    async fn cluster(&self, name: &str) -> Result<ClusterEndpoint, String>;
}
