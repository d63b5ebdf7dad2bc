//! What `doctor` reads besides the pools and Services: each NLB's claimed ports and
//! listeners, the project's target groups, the claims table's identity, the dead letters. It
//! reads NLB by NLB as the sweep does, never Service by Service.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use nlb_port_pool::model::claims::ClaimStore;
use nlb_port_pool::model::elb::{LoadBalancing, target_group_name};

use super::{AT_ONCE, Listeners, Sources};
use crate::progress::Progress;
use crate::snapshot::{
    DeepSnapshot, HolderView, IdentityView, ListenerView, NlbSnapshot, PoolSnapshot,
    TargetGroupView,
};

impl Sources {
    pub(super) async fn deep(
        &self,
        pools: &[PoolSnapshot],
        listeners_by_nlb: &Listeners,
        progress: &Progress,
    ) -> Result<DeepSnapshot> {
        let mut deep = DeepSnapshot {
            stack_id: self.stack_id.clone(),
            ..DeepSnapshot::default()
        };
        let existing: Vec<&NlbSnapshot> = pools
            .iter()
            .flat_map(|p| &p.nlbs)
            .filter(|n| n.dns.is_some())
            .collect();
        progress.say("reading the claimed ports of each NLB");
        deep.holders = futures::stream::iter(pools.iter().flat_map(|p| &p.nlbs))
            .map(|nlb| async move {
                let holders = self
                    .store
                    .port_holders(&nlb.arn)
                    .await
                    .with_context(|| format!("reading the port items of {}", nlb.name))?;
                let views = holders
                    .iter()
                    .map(|h| HolderView {
                        port: h.port,
                        uid: h.owner.uid.clone(),
                        service: format!("{}/{}", h.owner.key.namespace, h.owner.key.name),
                        target_group_name: target_group_name(&h.owner, &h.key),
                        claimed_at: h.claimed_at,
                    })
                    .collect::<Vec<_>>();
                Ok::<_, anyhow::Error>((nlb.arn.clone(), views))
            })
            .buffer_unordered(AT_ONCE)
            .try_collect()
            .await?;
        for (i, nlb) in existing.iter().enumerate() {
            progress.say(&format!(
                "tags of NLB {}/{}'s listeners",
                i + 1,
                existing.len()
            ));
            let listeners = listeners_by_nlb
                .get(&nlb.arn)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mut views: Vec<ListenerView> = listeners
                .iter()
                .map(|l| ListenerView {
                    arn: l.arn.clone(),
                    port: l.port,
                    ours: false,
                    target_group: l.target_group_arn.clone(),
                })
                .collect();
            // A listener forwarding to its port's holder's target group is the holder's; the
            // tags of the others say whether they are this cluster's (the sweep's way: no
            // per-Service reads).
            let holders = deep.holders.get(&nlb.arn).map(Vec::as_slice).unwrap_or(&[]);
            let unaccounted: Vec<String> = views
                .iter_mut()
                .filter_map(|l| {
                    let held = holders.iter().any(|h| {
                        h.port == l.port
                            && Some(h.target_group_name.as_str()) == l.target_group_name()
                    });
                    l.ours = held;
                    (!held).then(|| l.arn.clone())
                })
                .collect();
            let tags = self
                .elb
                .tags_of(&unaccounted)
                .await
                .with_context(|| format!("reading the tags of {}'s listeners", nlb.name))?;
            for l in views.iter_mut().filter(|l| !l.ours) {
                l.ours = tags.get(&l.arn).is_some_and(|t| self.is_ours(t));
            }
            deep.listeners.insert(nlb.arn.clone(), views);
        }
        let expected: BTreeSet<&str> = deep
            .holders
            .values()
            .flatten()
            .map(|h| h.target_group_name.as_str())
            .collect();
        deep.target_groups = self.target_groups(&expected, progress).await?;
        deep.identity = self
            .store
            .identity_of(&self.cluster)
            .await
            .context("reading the claims table's identity item of this cluster")?
            .map(|i| IdentityView {
                cluster_name: i.cluster_name,
                cluster_uid: i.cluster_uid,
                stack_id: i.stack_id,
            });
        let namespaces: Api<Namespace> = Api::all(self.kube.clone());
        deep.kube_system_uid = namespaces
            .get_opt("kube-system")
            .await
            .context("reading the kube-system namespace (its uid is the cluster's identity)")?
            .and_then(|n| n.metadata.uid);
        if let Some((sqs, url)) = &self.dead_letters {
            deep.dead_letters = Some(dead_letters(sqs, url).await?);
        }
        Ok(deep)
    }

    async fn target_groups(
        &self,
        expected: &BTreeSet<&str>,
        progress: &Progress,
    ) -> Result<Vec<TargetGroupView>> {
        let mut groups = Vec::new();
        let mut marker = None;
        loop {
            progress.say(&format!("target groups ({} so far)", groups.len()));
            let (page, next) = self
                .elb
                .project_target_groups(marker)
                .await
                .context("listing the project's target groups (ELBv2 DescribeTargetGroups)")?;
            groups.extend(page);
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        // A group named for a claim is that claim's; the tags of the others say whether they
        // are this cluster's.
        let arns: Vec<String> = groups
            .iter()
            .filter(|g| !expected.contains(g.name.as_str()))
            .map(|g| g.arn.clone())
            .collect();
        let tags = self
            .elb
            .tags_of(&arns)
            .await
            .context("reading the target groups' tags")?;
        Ok(groups
            .into_iter()
            .map(|g| TargetGroupView {
                ours: expected.contains(g.name.as_str())
                    || tags.get(&g.arn).is_some_and(|t| self.is_ours(t)),
                arn: g.arn,
                name: g.name,
            })
            .collect())
    }

    fn is_ours(&self, tags: &std::collections::HashMap<String, String>) -> bool {
        nlb_port_pool::model::elb::owned_by_cluster(tags, &self.cluster)
    }
}

async fn dead_letters(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(nlb_port_pool::adapters::aws::error::describe(&e).0))
        .with_context(|| format!("reading the dead-letter queue's depth ({url})"))?;
    Ok(out
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}
