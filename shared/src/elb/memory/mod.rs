//! An in-memory [`LoadBalancing`] that behaves as AWS does (not as moto does): a second
//! listener on a used port is refused, an NLB takes at most 50 listeners (whoever made them),
//! an NLB deleted out of band is `LoadBalancerNotFound`, target group names are unique, a
//! deregistered target drains before it is gone. Failures can be injected per
//! operation, and every call is counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ElbError, ElbErrorKind, EnsuredTargetGroup, ListenerInfo, LoadBalancing, ResourceTags,
    TARGET_GROUP_PREFIX, TargetGroupInfo, TargetGroupSpec,
};
use crate::annotations::HealthCheckSpec;
use crate::listener_options::TlsListener;
use crate::protocol::ListenerProtocol;
use crate::targets::Target;

mod fleet;
mod options;
mod quotas;
mod zones;

pub use fleet::MadeNlb;
pub use quotas::ElbQuotas;
use zones::Zones;

/// A target group held in memory.
#[derive(Debug, Clone)]
pub struct MemoryTargetGroup {
    /// Name, ARN and health check.
    pub info: TargetGroupInfo,
    /// Its protocol.
    pub protocol: ListenerProtocol,
    /// Its tags.
    pub tags: HashMap<String, String>,
    /// Registered targets.
    pub targets: BTreeSet<Target>,
    /// Deregistered targets still draining (AWS keeps them for the deregistration delay; here
    /// until registered again).
    pub draining: BTreeSet<Target>,
    /// Attributes set on it (AWS's defaults are not listed).
    pub attributes: BTreeMap<String, String>,
}

/// A listener held in memory.
#[derive(Debug, Clone)]
pub struct MemoryListener {
    /// Its description.
    pub info: ListenerInfo,
    /// Its tags.
    pub tags: HashMap<String, String>,
    /// Its certificates besides the default one.
    pub certificates: Vec<String>,
}

#[derive(Default)]
struct State {
    nlbs: BTreeMap<String, String>,
    /// NLBs made through [`crate::elb::NlbFleet`], by ARN (also in `nlbs` while they exist).
    made: BTreeMap<String, MadeNlb>,
    /// Describes of a made NLB that still report it provisioning.
    provisioning_polls: usize,
    target_groups: BTreeMap<String, MemoryTargetGroup>,
    listeners: BTreeMap<String, MemoryListener>,
    next_id: u64,
    failures: HashMap<&'static str, VecDeque<ElbError>>,
    calls: BTreeMap<&'static str, usize>,
    /// What every target's health reads (state, reason); `None`: healthy, as moto answers.
    health: Option<(String, Option<String>)>,
    /// AWS's target group and target quotas, when a test sets them.
    quotas: ElbQuotas,
    /// NLBs' zones and cross-zone settings, and targets' zones.
    zones: Zones,
}

impl State {
    /// Adds a listener (no checks: the caller made them); returns its ARN.
    fn add_listener(
        &mut self,
        nlb_arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        target_group_arn: Option<&str>,
        tags: HashMap<String, String>,
    ) -> String {
        self.next_id += 1;
        let arn = format!("{nlb_arn}/listener/{}", self.next_id);
        let info = ListenerInfo {
            arn: arn.clone(),
            nlb_arn: nlb_arn.to_owned(),
            port,
            protocol: Some(protocol),
            target_group_arn: target_group_arn.map(str::to_owned),
            tls: None,
        };
        self.listeners.insert(
            arn.clone(),
            MemoryListener {
                info,
                tags,
                certificates: Vec::new(),
            },
        );
        arn
    }
}

/// ELBv2 in memory.
#[derive(Default)]
pub struct MemoryLoadBalancing {
    state: Mutex<State>,
    latency: std::time::Duration,
}

fn tag_map(tags: &ResourceTags) -> HashMap<String, String> {
    tags.pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// AWS's default quota of listeners per NLB.
const LISTENERS_PER_NLB: usize = 50;

fn nlb_not_found(operation: &'static str, nlb_arn: &str) -> ElbError {
    ElbError {
        operation,
        message: format!("load balancer {nlb_arn} not found"),
        retryable: false,
        kind: ElbErrorKind::NlbNotFound,
    }
}

fn not_found(operation: &'static str, what: &str) -> ElbError {
    ElbError {
        operation,
        message: format!("{what} not found"),
        retryable: false,
        kind: ElbErrorKind::NotFound,
    }
}

impl MemoryLoadBalancing {
    /// An ELBv2 with the NLBs `(arn, dns name)`.
    pub fn with_nlbs(nlbs: &[(&str, &str)]) -> Self {
        let lb = Self::default();
        lb.lock().nlbs = nlbs
            .iter()
            .map(|(a, d)| ((*a).to_owned(), (*d).to_owned()))
            .collect();
        lb
    }

    /// Every call takes `latency` (of tokio time), like a network round trip.
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = latency;
        self
    }

    async fn round_trip(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes every target's health read `state` (with `reason`); `None`: healthy again.
    pub fn set_target_health(&self, health: Option<(&str, Option<&str>)>) {
        self.lock().health = health.map(|(s, r)| (s.to_owned(), r.map(str::to_owned)));
    }

    /// Makes the next call of `operation` fail with `error`.
    pub fn fail_next(&self, operation: &'static str, error: ElbError) {
        self.lock()
            .failures
            .entry(operation)
            .or_default()
            .push_back(error);
    }

    /// How many times `operation` was called.
    pub fn calls(&self, operation: &str) -> usize {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// Every call so far, by operation.
    pub fn all_calls(&self) -> BTreeMap<&'static str, usize> {
        self.lock().calls.clone()
    }

    /// Every target group.
    pub fn target_groups(&self) -> Vec<MemoryTargetGroup> {
        self.lock().target_groups.values().cloned().collect()
    }

    /// Every listener.
    pub fn listeners(&self) -> Vec<MemoryListener> {
        self.lock().listeners.values().cloned().collect()
    }

    /// Deletes a listener behind the system's back (drift).
    pub fn remove_listener(&self, arn: &str) {
        self.lock().listeners.remove(arn);
    }

    /// Deletes an NLB behind the system's back, with its listeners (as AWS does).
    pub fn remove_nlb(&self, nlb_arn: &str) {
        let mut st = self.lock();
        st.nlbs.remove(nlb_arn);
        st.listeners.retain(|_, l| l.info.nlb_arn != nlb_arn);
    }

    /// A listener someone else made on `nlb_arn` at `port` (no project tags); returns its ARN.
    pub fn add_foreign_listener(&self, nlb_arn: &str, port: u16) -> String {
        self.lock()
            .add_listener(nlb_arn, port, ListenerProtocol::Tcp, None, HashMap::new())
    }

    fn enter(&self, operation: &'static str) -> Result<std::sync::MutexGuard<'_, State>, ElbError> {
        let mut st = self.lock();
        *st.calls.entry(operation).or_default() += 1;
        if let Some(err) = st.failures.get_mut(operation).and_then(VecDeque::pop_front) {
            return Err(err);
        }
        Ok(st)
    }
}

#[async_trait]
impl LoadBalancing for MemoryLoadBalancing {
    async fn nlb_dns_names(
        &self,
        nlb_arns: &[String],
    ) -> Result<HashMap<String, String>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeLoadBalancers")?;
        Ok(nlb_arns
            .iter()
            .filter_map(|a| Some((a.clone(), st.nlbs.get(a)?.clone())))
            .collect())
    }

    async fn ensure_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> Result<EnsuredTargetGroup, ElbError> {
        self.round_trip().await;
        let mut st = self.enter("CreateTargetGroup")?;
        if let Some(tg) = st.target_groups.values().find(|t| t.info.name == spec.name) {
            let uid = tg.tags.get(super::TAG_SERVICE_UID);
            if uid != Some(&spec.tags.owner.uid) {
                return Err(ElbError {
                    operation: "CreateTargetGroup",
                    message: format!("{} belongs to another owner", spec.name),
                    retryable: false,
                    kind: ElbErrorKind::Other,
                });
            }
            return Ok(EnsuredTargetGroup {
                arn: tg.info.arn.clone(),
                created: false,
            });
        }
        st.check_target_group_quota()?;
        st.next_id += 1;
        let arn = format!(
            "arn:aws:elasticloadbalancing:mem:0:targetgroup/{}/{}",
            spec.name, st.next_id
        );
        st.target_groups.insert(
            arn.clone(),
            MemoryTargetGroup {
                info: TargetGroupInfo {
                    arn: arn.clone(),
                    name: spec.name.clone(),
                    health_check: spec.health_check.clone(),
                    vpc_id: Some(spec.vpc_id.clone()),
                },
                protocol: spec.protocol,
                tags: tag_map(&spec.tags),
                targets: BTreeSet::new(),
                draining: BTreeSet::new(),
                attributes: BTreeMap::new(),
            },
        );
        Ok(EnsuredTargetGroup { arn, created: true })
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeTargetGroups (by name)")?;
        Ok(st
            .target_groups
            .values()
            .find(|t| t.info.name == name)
            .map(|t| t.info.clone()))
    }

    async fn describe_target_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<TargetGroupInfo>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeTargetGroups")?;
        Ok(arns
            .iter()
            .filter_map(|a| st.target_groups.get(a).map(|t| t.info.clone()))
            .collect())
    }

    async fn modify_health_check(&self, arn: &str, hc: &HealthCheckSpec) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("ModifyTargetGroup")?;
        let tg = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found("ModifyTargetGroup", arn))?;
        tg.info.health_check = hc.clone();
        Ok(())
    }

    async fn target_group_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ElbError> {
        self.round_trip().await;
        self.read_attributes(arn)
    }

    async fn set_target_group_attributes(
        &self,
        arn: &str,
        attributes: &[(String, String)],
    ) -> Result<(), ElbError> {
        self.round_trip().await;
        self.write_attributes(arn, attributes)
    }

    async fn modify_listener(
        &self,
        listener_arn: &str,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        self.round_trip().await;
        self.change_listener(listener_arn, protocol, tls, target_group_arn)
    }

    async fn listener_certificates(&self, listener_arn: &str) -> Result<Vec<String>, ElbError> {
        self.round_trip().await;
        self.read_certificates(listener_arn)
    }

    async fn set_listener_certificates(
        &self,
        listener_arn: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ElbError> {
        self.round_trip().await;
        self.change_certificates(listener_arn, add, remove)
    }

    async fn ssl_policy_exists(&self, name: &str) -> Result<bool, ElbError> {
        self.round_trip().await;
        drop(self.enter("DescribeSSLPolicies")?);
        Ok(options::SSL_POLICIES.contains(&name))
    }

    async fn create_listener(
        &self,
        nlb_arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        tls: Option<&TlsListener>,
        target_group_arn: &str,
        tags: &ResourceTags,
    ) -> Result<String, ElbError> {
        self.round_trip().await;
        let mut st = self.enter("CreateListener")?;
        if !st.nlbs.contains_key(nlb_arn) {
            return Err(nlb_not_found("CreateListener", nlb_arn));
        }
        if !st.target_groups.contains_key(target_group_arn) {
            return Err(not_found("CreateListener", target_group_arn));
        }
        if let Some(l) = st
            .listeners
            .values()
            .find(|l| l.info.nlb_arn == nlb_arn && l.info.port == port)
        {
            // AWS: the same settings again is the same listener; other settings are refused.
            if l.info.protocol == Some(protocol)
                && l.info.target_group_arn.as_deref() == Some(target_group_arn)
            {
                return Ok(l.info.arn.clone());
            }
            return Err(ElbError {
                operation: "CreateListener",
                message: format!("a listener already uses port {port}"),
                retryable: false,
                kind: ElbErrorKind::DuplicateListener,
            });
        }
        let on_nlb = st
            .listeners
            .values()
            .filter(|l| l.info.nlb_arn == nlb_arn)
            .count();
        if on_nlb >= LISTENERS_PER_NLB {
            return Err(ElbError {
                operation: "CreateListener",
                message: format!("{nlb_arn} has {on_nlb} listeners, its quota"),
                retryable: false,
                kind: ElbErrorKind::TooManyListeners,
            });
        }
        let arn = st.add_listener(
            nlb_arn,
            port,
            protocol,
            Some(target_group_arn),
            tag_map(tags),
        );
        if let Some(listener) = st.listeners.get_mut(&arn) {
            options::apply_tls(&mut listener.info, protocol, tls);
        }
        Ok(arn)
    }

    async fn describe_listeners(&self, arns: &[String]) -> Result<Vec<ListenerInfo>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeListeners")?;
        Ok(arns
            .iter()
            .filter_map(|a| st.listeners.get(a).map(|l| l.info.clone()))
            .collect())
    }

    async fn listeners_of(&self, nlb_arn: &str) -> Result<Vec<ListenerInfo>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeListeners (of an NLB)")?;
        if !st.nlbs.contains_key(nlb_arn) {
            return Err(nlb_not_found("DescribeListeners (of an NLB)", nlb_arn));
        }
        Ok(st
            .listeners
            .values()
            .filter(|l| l.info.nlb_arn == nlb_arn)
            .map(|l| l.info.clone())
            .collect())
    }

    async fn set_listener_target(
        &self,
        listener_arn: &str,
        target_group_arn: &str,
    ) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("ModifyListener")?;
        let l = st
            .listeners
            .get_mut(listener_arn)
            .ok_or_else(|| not_found("ModifyListener", listener_arn))?;
        l.info.target_group_arn = Some(target_group_arn.to_owned());
        Ok(())
    }

    async fn targets(&self, target_group_arn: &str) -> Result<BTreeSet<Target>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeTargetHealth")?;
        st.target_groups
            .get(target_group_arn)
            .map(|t| t.targets.clone())
            .ok_or_else(|| not_found("DescribeTargetHealth", target_group_arn))
    }

    async fn nlb_zones(&self, nlb_arn: &str) -> Result<BTreeSet<String>, ElbError> {
        self.round_trip().await;
        drop(self.enter("DescribeLoadBalancers")?);
        self.zones_of(nlb_arn)
    }

    async fn nlb_cross_zone(&self, nlb_arn: &str) -> Result<bool, ElbError> {
        self.round_trip().await;
        drop(self.enter("DescribeLoadBalancerAttributes")?);
        self.cross_zone_of(nlb_arn)
    }

    async fn target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<crate::elb::TargetHealth>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeTargetHealth")?;
        let (state, reason) = st
            .health
            .clone()
            .unwrap_or_else(|| ("healthy".to_owned(), None));
        st.target_groups
            .get(target_group_arn)
            .map(|g| {
                g.targets
                    .iter()
                    .map(|t| crate::elb::TargetHealth {
                        target: *t,
                        state: state.clone(),
                        reason: reason.clone(),
                        zone: st.zones.zone_of(t.ip),
                    })
                    .collect()
            })
            .ok_or_else(|| not_found("DescribeTargetHealth", target_group_arn))
    }

    async fn register(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("RegisterTargets")?;
        st.check_target_quota(target_group_arn, targets)?;
        let tg = st
            .target_groups
            .get_mut(target_group_arn)
            .ok_or_else(|| not_found("RegisterTargets", target_group_arn))?;
        tg.targets.extend(targets.iter().copied());
        for t in targets {
            tg.draining.remove(t);
        }
        Ok(())
    }

    async fn deregister(&self, target_group_arn: &str, targets: &[Target]) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("DeregisterTargets")?;
        let tg = st
            .target_groups
            .get_mut(target_group_arn)
            .ok_or_else(|| not_found("DeregisterTargets", target_group_arn))?;
        for t in targets {
            if tg.targets.remove(t) {
                tg.draining.insert(*t);
            }
        }
        Ok(())
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), ElbError> {
        self.round_trip().await;
        self.enter("DeleteListener")?.listeners.remove(arn);
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("DeleteTargetGroup")?;
        if st
            .listeners
            .values()
            .any(|l| l.info.target_group_arn.as_deref() == Some(arn))
        {
            return Err(ElbError {
                operation: "DeleteTargetGroup",
                message: format!("{arn} is in use by a listener"),
                retryable: true,
                kind: ElbErrorKind::InUse,
            });
        }
        st.target_groups.remove(arn);
        Ok(())
    }

    async fn tags_of(
        &self,
        arns: &[String],
    ) -> Result<HashMap<String, HashMap<String, String>>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeTags")?;
        Ok(arns
            .iter()
            .filter_map(|a| {
                let tags = st
                    .listeners
                    .get(a)
                    .map(|l| l.tags.clone())
                    .or_else(|| st.target_groups.get(a).map(|t| t.tags.clone()))
                    .or_else(|| {
                        st.made
                            .get(a)
                            .filter(|_| st.nlbs.contains_key(a))
                            .map(|m| m.tags.iter().cloned().collect())
                    })?;
                Some((a.clone(), tags))
            })
            .collect())
    }

    async fn project_target_groups(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<TargetGroupInfo>, Option<String>), ElbError> {
        self.round_trip().await;
        const PAGE: usize = 400;
        let st = self.enter("DescribeTargetGroups (page)")?;
        let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
        let all: Vec<_> = st.target_groups.values().collect();
        let page = all
            .iter()
            .skip(start)
            .take(PAGE)
            .filter(|t| t.info.name.starts_with(TARGET_GROUP_PREFIX))
            .map(|t| t.info.clone())
            .collect();
        let next = (start + PAGE < all.len()).then(|| (start + PAGE).to_string());
        Ok((page, next))
    }
}
