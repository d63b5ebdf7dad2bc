//! [`LoadBalancing`] in memory: each call checks what AWS checks and answers as AWS does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;

use super::options::{SSL_POLICIES, apply_tls};
use super::resources::MemoryTargetGroup;
use super::state::{LISTENERS_PER_NLB, MemoryLoadBalancing, nlb_not_found, not_found, tag_map};
use crate::contract::annotations::HealthCheckSpec;
use crate::contract::listener_options::TlsListener;
use crate::contract::protocol::ListenerProtocol;
use crate::model::elb::{
    ElbError, ElbErrorKind, EnsuredTargetGroup, ListenerInfo, LoadBalancing, ResourceTags,
    TAG_SERVICE_UID, TARGET_GROUP_PREFIX, TargetGroupInfo, TargetGroupSpec, TargetHealth,
};
use crate::model::targets::Target;

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
            let uid = tg.tags.get(TAG_SERVICE_UID);
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
        Ok(SSL_POLICIES.contains(&name))
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
            apply_tls(&mut listener.info, protocol, tls);
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

    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>, ElbError> {
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
                    .map(|t| TargetHealth {
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

    async fn tag_listener(&self, listener_arn: &str, tags: &ResourceTags) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("AddTags")?;
        let Some(listener) = st.listeners.get_mut(listener_arn) else {
            return Err(ElbError {
                operation: "AddTags",
                message: format!("listener {listener_arn} not found"),
                retryable: false,
                kind: ElbErrorKind::Other,
            });
        };
        listener.tags.extend(tag_map(tags));
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
