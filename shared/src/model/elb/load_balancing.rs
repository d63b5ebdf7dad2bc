//! The ELBv2 operations the system uses ([`LoadBalancing`]), and the target groups,
//! listeners and target health they make and read, as plain data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;

use super::error::ElbError;
use super::naming::ResourceTags;
use crate::contract::annotations::HealthCheckSpec;
use crate::contract::listener_options::{TargetGroupAttributes, TlsListener};
use crate::contract::protocol::ListenerProtocol;
use crate::model::targets::Target;

/// What a target group should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupSpec {
    /// Its name, from [`target_group_name`](super::target_group_name).
    pub name: String,
    /// Its protocol (the listener's).
    pub protocol: ListenerProtocol,
    /// The default port of its targets.
    pub port: u16,
    /// The VPC of the NLBs.
    pub vpc_id: String,
    /// The health check.
    pub health_check: HealthCheckSpec,
    /// Its attributes (client IP, PROXY v2, deregistration), set after it is made.
    pub attributes: TargetGroupAttributes,
    /// Its tags.
    pub tags: ResourceTags,
}

/// A target group as ELBv2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupInfo {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its health check as configured.
    pub health_check: HealthCheckSpec,
    /// The VPC it is in.
    pub vpc_id: Option<String>,
}

/// A TLS listener's settings as ELBv2 describes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerTlsInfo {
    /// The default certificate.
    pub certificate: Option<String>,
    /// The security policy.
    pub policy: Option<String>,
    /// The ALPN policy (`None` when it has none).
    pub alpn: Option<String>,
}

impl ListenerTlsInfo {
    /// Whether these are the settings `want` asks for (additional certificates aside).
    pub fn matches(&self, want: &TlsListener) -> bool {
        self.certificate.as_deref() == Some(want.certificate.as_str())
            && self.policy.as_deref() == Some(want.policy.as_str())
            && self.alpn.as_deref().unwrap_or("None") == want.alpn.as_str()
    }
}

/// A listener as ELBv2 describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerInfo {
    /// Its ARN.
    pub arn: String,
    /// The NLB it is on.
    pub nlb_arn: String,
    /// Its port.
    pub port: u16,
    /// Its protocol.
    pub protocol: Option<ListenerProtocol>,
    /// The target group its default action forwards to.
    pub target_group_arn: Option<String>,
    /// Its TLS settings, when its protocol is `TLS` (then `protocol` is `None`).
    pub tls: Option<ListenerTlsInfo>,
}

/// One registered target's health, as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// The target.
    pub target: Target,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining`, `unavailable`, ...
    pub state: String,
    /// AWS's reason code when not healthy, e.g. `Elb.RegistrationInProgress`.
    pub reason: Option<String>,
    /// The target's zone, when AWS reports it (it detects the zone of an IP in the VPC).
    pub zone: Option<String>,
}

impl TargetHealth {
    /// Whether the NLB sends traffic to it.
    pub fn is_healthy(&self) -> bool {
        self.state == "healthy"
    }
}

/// A target group made or found by [`LoadBalancing::ensure_target_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredTargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Made by this call (so it has no targets yet).
    pub created: bool,
}

/// The ELBv2 operations the system uses.
#[async_trait]
pub trait LoadBalancing: Send + Sync {
    /// The DNS names of the NLBs that exist; an NLB that does not is left out of the map.
    async fn nlb_dns_names(&self, nlb_arns: &[String])
    -> Result<HashMap<String, String>, ElbError>;

    /// Makes the target group, or finds the one an earlier attempt made under the same name.
    /// A same-named group that is not the project's, or is another Service's, is an error; the
    /// regional quota reached is an error of kind [`ElbErrorKind::TooManyTargetGroups`](super::ElbErrorKind::TooManyTargetGroups).
    async fn ensure_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> Result<EnsuredTargetGroup, ElbError>;

    /// The target group called `name`, if it exists.
    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, ElbError>;

    /// The target groups among `arns` that exist.
    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<TargetGroupInfo>, ElbError>;

    /// Sets the health check of a target group.
    async fn modify_health_check(
        &self,
        arn: &str,
        health_check: &HealthCheckSpec,
    ) -> Result<(), ElbError>;

    /// The attributes of a target group (DescribeTargetGroupAttributes).
    async fn target_group_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ElbError>;

    /// Sets attributes of a target group (ModifyTargetGroupAttributes).
    async fn set_target_group_attributes(
        &self,
        arn: &str,
        attributes: &[(String, String)],
    ) -> Result<(), ElbError>;

    /// Makes a listener on `nlb_arn` at `port` forwarding to `target_group_arn`, terminating
    /// TLS as `tls` says when given (its default certificate; the others are added with
    /// [`LoadBalancing::set_listener_certificates`]). AWS's refusals come back as kinds:
    /// [`ElbErrorKind::DuplicateListener`](super::ElbErrorKind::DuplicateListener) (the port is used),
    /// [`ElbErrorKind::TooManyListeners`](super::ElbErrorKind::TooManyListeners) and [`ElbErrorKind::NlbNotFound`](super::ElbErrorKind::NlbNotFound).
    async fn create_listener(
        &self,
        nlb_arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
        tags: &ResourceTags,
    ) -> Result<String, ElbError>;

    /// Changes a listener in place (same port): its protocol (`TLS` when `tls` is given),
    /// TLS settings and default action, in one ModifyListener.
    async fn modify_listener(
        &self,
        listener_arn: &str,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
    ) -> Result<(), ElbError>;

    /// The certificates of a listener besides its default one.
    async fn listener_certificates(&self, listener_arn: &str) -> Result<Vec<String>, ElbError>;

    /// Adds and removes certificates of a listener besides its default one.
    async fn set_listener_certificates(
        &self,
        listener_arn: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ElbError>;

    /// Whether ELBv2 has a security policy called `name` (DescribeSSLPolicies).
    async fn ssl_policy_exists(&self, name: &str) -> Result<bool, ElbError>;

    /// The listeners among `arns` that exist.
    async fn describe_listeners(&self, arns: &[String]) -> Result<Vec<ListenerInfo>, ElbError>;

    /// Every listener of an NLB (at most 50). An NLB that does not exist is an error of kind
    /// [`ElbErrorKind::NlbNotFound`](super::ElbErrorKind::NlbNotFound).
    async fn listeners_of(&self, nlb_arn: &str) -> Result<Vec<ListenerInfo>, ElbError>;

    /// Tags a listener as `tags` say (AddTags; keys it has are overwritten): a listener taken
    /// over by another Service with the same claim key becomes that Service's.
    async fn tag_listener(&self, listener_arn: &str, tags: &ResourceTags) -> Result<(), ElbError>;

    /// Points a listener's default action at `target_group_arn`.
    async fn set_listener_target(
        &self,
        listener_arn: &str,
        target_group_arn: &str,
    ) -> Result<(), ElbError>;

    /// The targets registered in a target group. A target in `draining` (deregistered, still
    /// finishing its connections for the deregistration delay) is not registered: registering
    /// it again is what brings it back.
    async fn targets(&self, target_group_arn: &str) -> Result<BTreeSet<Target>, ElbError>;

    /// An NLB's zones (DescribeLoadBalancers). An NLB that does not exist is an error of kind
    /// [`ElbErrorKind::NlbNotFound`](super::ElbErrorKind::NlbNotFound).
    async fn nlb_zones(&self, nlb_arn: &str) -> Result<BTreeSet<String>, ElbError>;

    /// Whether an NLB balances across zones (DescribeLoadBalancerAttributes,
    /// `load_balancing.cross_zone.enabled`). An NLB that does not exist is an error of kind
    /// [`ElbErrorKind::NlbNotFound`](super::ElbErrorKind::NlbNotFound).
    async fn nlb_cross_zone(&self, nlb_arn: &str) -> Result<bool, ElbError>;

    /// The health of each target of a target group (one DescribeTargetHealth).
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>, ElbError>;

    /// Registers targets (in batches). A target quota reached is an error of kind
    /// [`ElbErrorKind::TooManyTargets`](super::ElbErrorKind::TooManyTargets).
    async fn register(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError>;

    /// Deregisters targets (in batches).
    async fn deregister(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError>;

    /// Deletes a listener; one already gone counts as deleted.
    async fn delete_listener(&self, arn: &str) -> Result<(), ElbError>;

    /// Deletes a target group; one already gone counts as deleted.
    async fn delete_target_group(&self, arn: &str) -> Result<(), ElbError>;

    /// The project tags of each resource among `arns` that exists (empty map when untagged).
    async fn tags_of(
        &self,
        arns: &[String],
    ) -> Result<HashMap<String, HashMap<String, String>>, ElbError>;

    /// One page of target groups whose names carry the project's prefix, and the marker of
    /// the next page.
    async fn project_target_groups(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<TargetGroupInfo>, Option<String>), ElbError>;
}
