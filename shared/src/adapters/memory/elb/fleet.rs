//! [`NlbFleet`] in memory: NLBs are `provisioning` for a set number of describes, names are
//! unique (a second create of a name is AWS's `DuplicateLoadBalancerName`, answered with the
//! existing NLB as the real client does), and deleting takes the NLB's listeners with it.

use async_trait::async_trait;

use super::resources::MadeNlb;
use super::state::{MemoryLoadBalancing, nlb_not_found};
use crate::model::elb::ElbError;
use crate::model::elb::fleet::{NlbFleet, NlbInfo, NlbSpec, NlbStatus};

impl MemoryLoadBalancing {
    /// Made NLBs report `provisioning` to their first `polls` describes (default 0: active at
    /// once; `usize::MAX`: never, an NLB stuck provisioning).
    pub fn with_provisioning_polls(self, polls: usize) -> Self {
        self.lock().provisioning_polls = polls;
        self
    }

    /// NLBs made from now on report `provisioning` to their first `polls` describes (those
    /// made before keep theirs).
    pub fn set_provisioning_polls(&self, polls: usize) {
        self.lock().provisioning_polls = polls;
    }

    /// Every made NLB that exists, by ARN.
    pub fn made_nlbs(&self) -> Vec<(String, MadeNlb)> {
        let st = self.lock();
        st.made
            .iter()
            .filter(|(a, _)| st.nlbs.contains_key(*a))
            .map(|(a, m)| (a.clone(), m.clone()))
            .collect()
    }

    /// Makes an NLB as if by hand (or by a pool function that stopped before recording it).
    pub fn add_made_nlb(&self, spec: &NlbSpec) -> String {
        let mut st = self.lock();
        st.next_id += 1;
        let arn = format!(
            "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/net/{}/{:016x}",
            spec.name, st.next_id
        );
        st.nlbs
            .insert(arn.clone(), format!("{}.elb.amazonaws.com", spec.name));
        let polls_left = st.provisioning_polls;
        st.made.insert(
            arn.clone(),
            MadeNlb {
                spec: spec.clone(),
                tags: spec.tags.clone(),
                polls_left,
                cross_zone: false,
            },
        );
        arn
    }
}

#[async_trait]
impl NlbFleet for MemoryLoadBalancing {
    async fn create_nlb(&self, spec: &NlbSpec) -> Result<String, ElbError> {
        self.round_trip().await;
        {
            let st = self.enter("CreateLoadBalancer")?;
            if let Some((arn, _)) = st
                .made
                .iter()
                .find(|(a, m)| m.spec.name == spec.name && st.nlbs.contains_key(*a))
            {
                return Ok(arn.clone());
            }
        }
        Ok(self.add_made_nlb(spec))
    }

    async fn count_nlbs(&self) -> Result<usize, ElbError> {
        self.round_trip().await;
        Ok(self.enter("DescribeLoadBalancers (every page)")?.nlbs.len())
    }

    async fn nlb_named(&self, name: &str) -> Result<Option<NlbInfo>, ElbError> {
        self.round_trip().await;
        let st = self.enter("DescribeLoadBalancers (by name)")?;
        Ok(st
            .made
            .iter()
            .find(|(a, m)| m.spec.name == name && st.nlbs.contains_key(*a))
            .map(|(a, m)| NlbInfo {
                arn: a.clone(),
                name: m.spec.name.clone(),
                status: status(m),
            }))
    }

    async fn describe_nlbs(&self, arns: &[String]) -> Result<Vec<NlbInfo>, ElbError> {
        self.round_trip().await;
        let mut st = self.enter("DescribeLoadBalancers")?;
        let mut out = Vec::new();
        for arn in arns {
            if !st.nlbs.contains_key(arn) {
                continue;
            }
            let info = match st.made.get_mut(arn) {
                Some(m) => {
                    let info = NlbInfo {
                        arn: arn.clone(),
                        name: m.spec.name.clone(),
                        status: status(m),
                    };
                    m.polls_left = m.polls_left.saturating_sub(1);
                    info
                }
                None => NlbInfo {
                    arn: arn.clone(),
                    name: arn.rsplit('/').nth(1).unwrap_or_default().to_owned(),
                    status: NlbStatus::Active,
                },
            };
            out.push(info);
        }
        Ok(out)
    }

    async fn set_cross_zone(&self, nlb_arn: &str, enabled: bool) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("ModifyLoadBalancerAttributes")?;
        if !st.nlbs.contains_key(nlb_arn) {
            return Err(nlb_not_found("ModifyLoadBalancerAttributes", nlb_arn));
        }
        if let Some(m) = st.made.get_mut(nlb_arn) {
            m.cross_zone = enabled;
        }
        Ok(())
    }

    async fn delete_nlb(&self, nlb_arn: &str) -> Result<(), ElbError> {
        self.round_trip().await;
        let mut st = self.enter("DeleteLoadBalancer")?;
        st.nlbs.remove(nlb_arn);
        st.listeners.retain(|_, l| l.info.nlb_arn != nlb_arn);
        Ok(())
    }
}

fn status(m: &MadeNlb) -> NlbStatus {
    if m.polls_left > 0 {
        NlbStatus::Provisioning
    } else {
        NlbStatus::Active
    }
}
