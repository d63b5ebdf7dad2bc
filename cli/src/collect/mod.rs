//! Reading the claims table, ELBv2 and the Kubernetes API into a [`Snapshot`], read-only.
//! Each error names what could not be read.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use nlb_port_pool::adapters::aws::AwsLoadBalancing;
use nlb_port_pool::adapters::dynamo::DynamoClaimStore;
use nlb_port_pool::contract::annotations;
use nlb_port_pool::model::claims::{ClaimStore, PoolRecords};
use nlb_port_pool::model::elb::LoadBalancing;
use nlb_port_pool::model::pool::{NlbPool, PoolSet, nlb_name_of};

mod deep;

use crate::progress::Progress;
use crate::snapshot::{ClaimView, NlbSnapshot, PodView, PoolSnapshot, ServiceView, Snapshot};

/// The listeners on each NLB that exists, by its ARN.
type Listeners = BTreeMap<String, Vec<nlb_port_pool::model::elb::ListenerInfo>>;

/// NLBs (and Services) read at once.
const AT_ONCE: usize = 8;

/// What the tool reads from, and for which cluster.
pub struct Sources {
    /// The cluster's name (`CLUSTER_NAME`).
    pub cluster: String,
    /// The pools (`POOLS`).
    pub pools: PoolSet,
    /// The functions' stack id (`STACK_ID`), to check the table's identity with.
    pub stack_id: Option<String>,
    /// Only this namespace's Services, when given.
    pub namespace: Option<String>,
    /// The claims table.
    pub store: Arc<DynamoClaimStore>,
    /// ELBv2.
    pub elb: Arc<AwsLoadBalancing>,
    /// The Kubernetes API.
    pub kube: kube::Client,
    /// SQS, with the dead-letter queue's URL, when given.
    pub dead_letters: Option<(aws_sdk_sqs::Client, String)>,
}

fn seconds(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> i64 {
    t.map_or(0, |t| t.0.as_second())
}

impl Sources {
    /// The pools, their NLBs, the Services and pods; with `deep`, what `doctor` needs too.
    pub async fn snapshot(&self, deep: bool, progress: &Progress) -> Result<Snapshot> {
        let (pools, listeners) = self.pool_snapshots(progress).await?;
        progress.say("reading Services");
        let services = self.known_services().await?;
        let pods = self.pods(&services).await?;
        let views = services.iter().map(service_view).collect();
        let deep = if deep {
            Some(self.deep(&pools, &listeners, progress).await?)
        } else {
            None
        };
        progress.done();
        Ok(Snapshot {
            taken_at: nlb_port_pool::model::claims::now_epoch(),
            cluster: self.cluster.clone(),
            pools,
            services: views,
            pods,
            deep,
        })
    }

    /// Each pool with its made NLBs (managed pools' records).
    async fn members(&self) -> Result<Vec<(NlbPool, usize)>> {
        let mut out = Vec::new();
        for pool in self.pools.pools() {
            if pool.managed().is_none() {
                out.push((pool.clone(), 0));
                continue;
            }
            let record = self.store.pool_record(pool.name()).await.with_context(|| {
                format!("reading pool {}'s record in the claims table", pool.name())
            })?;
            out.push((
                pool.with_members(record.member_arns()),
                record.waiting.len(),
            ));
        }
        Ok(out)
    }

    /// The pools, and the listeners on each NLB that exists (which `doctor` looks at too).
    async fn pool_snapshots(&self, progress: &Progress) -> Result<(Vec<PoolSnapshot>, Listeners)> {
        let pools = self.members().await?;
        let arns: Vec<String> = pools
            .iter()
            .flat_map(|(p, _)| p.nlb_arns().to_vec())
            .collect();
        progress.say(&format!("reading {} NLBs", arns.len()));
        let usage = self
            .store
            .nlb_usage(&arns)
            .await
            .context("reading the NLBs' claims in the claims table")?;
        let dns = self
            .elb
            .nlb_dns_names(&arns)
            .await
            .context("describing the pools' NLBs (ELBv2 DescribeLoadBalancers)")?;
        let counted = std::sync::atomic::AtomicUsize::new(0);
        let listeners: Listeners = futures::stream::iter(arns.iter())
            .filter(|arn| std::future::ready(dns.contains_key(*arn)))
            .map(|arn| {
                let (counted, dns) = (&counted, &dns);
                async move {
                    let on_it = self
                        .elb
                        .listeners_of(arn)
                        .await
                        .with_context(|| format!("listing the listeners of {arn}"))?;
                    let i = counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress.say(&format!("listeners of NLB {i}/{}", dns.len()));
                    Ok::<_, anyhow::Error>((arn.clone(), on_it))
                }
            })
            .buffer_unordered(AT_ONCE)
            .try_collect()
            .await?;
        let snapshots = pools
            .iter()
            .map(|(pool, waiting)| PoolSnapshot {
                name: pool.name().to_owned(),
                managed: pool.managed().is_some(),
                placement: format!("{:?}", pool.placement()).to_lowercase(),
                ports: format!("{}-{}", pool.ports().first(), pool.ports().last()),
                usable_ports: pool.usable_ports(),
                quota: pool.listener_quota(),
                waiting: *waiting,
                nlbs: pool
                    .nlb_arns()
                    .iter()
                    .map(|arn| {
                        let u = usage.iter().find(|u| u.nlb_arn == *arn);
                        NlbSnapshot {
                            arn: arn.clone(),
                            name: nlb_name_of(arn).unwrap_or(arn).to_owned(),
                            dns: dns.get(arn).cloned(),
                            made: pool.is_made(arn),
                            state: u.and_then(|u| u.state).map(|s| s.as_str().to_owned()),
                            claimed: u.map_or(0, |u| u.ports.len()),
                            listeners: listeners.get(arn).map(Vec::len),
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok((snapshots, listeners))
    }

    fn service_api(&self) -> Api<Service> {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.kube.clone(), ns),
            None => Api::all(self.kube.clone()),
        }
    }

    /// The Services the system knows: opted in, holding the finalizer, or annotated by it.
    pub async fn known_services(&self) -> Result<Vec<Service>> {
        let all = self
            .service_api()
            .list(&ListParams::default())
            .await
            .context("listing Services (Kubernetes API)")?;
        Ok(all.items.into_iter().filter(is_known).collect())
    }

    /// The pods of the per-pod Services, by each Service's selector: `(namespace/service,
    /// pod, the pod)`.
    pub async fn pods_of(&self, services: &[Service]) -> Result<Vec<(String, Pod)>> {
        let mut out = Vec::new();
        for svc in services.iter().filter(|s| is_per_pod(s)) {
            let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                continue;
            };
            let namespace = svc.metadata.namespace.clone().unwrap_or_default();
            let name = svc.metadata.name.clone().unwrap_or_default();
            let labels = selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let pods: Api<Pod> = Api::namespaced(self.kube.clone(), &namespace);
            let listed = pods
                .list(&ListParams::default().labels(&labels))
                .await
                .with_context(|| format!("listing the pods of {namespace}/{name}"))?;
            out.extend(
                listed
                    .items
                    .into_iter()
                    .map(|p| (format!("{namespace}/{name}"), p)),
            );
        }
        Ok(out)
    }

    async fn pods(&self, services: &[Service]) -> Result<Vec<PodView>> {
        Ok(self
            .pods_of(services)
            .await?
            .into_iter()
            .map(|(service, p)| {
                let notes = p.metadata.annotations.clone().unwrap_or_default();
                PodView {
                    namespace: p.metadata.namespace.clone().unwrap_or_default(),
                    name: p.metadata.name.clone().unwrap_or_default(),
                    service: service.rsplit('/').next().unwrap_or_default().to_owned(),
                    created: seconds(p.metadata.creation_timestamp.as_ref()),
                    status: notes.get(annotations::STATUS).cloned(),
                    address: notes.get(annotations::ADDRESS).cloned(),
                }
            })
            .collect())
    }
}

/// A claim as the reports show it.
pub(crate) fn claim_view(c: &nlb_port_pool::model::claims::Claim) -> ClaimView {
    ClaimView {
        key: c.key.to_string(),
        pod: c.owner.pod.clone(),
        nlb_arn: c.nlb_arn.clone(),
        port: c.port,
        state: c.state.as_str().to_owned(),
        listener_arn: c.listener_arn.clone(),
        target_group_arn: c.target_group_arn.clone(),
        claimed_at: c.claimed_at,
    }
}

fn notes(svc: &Service) -> std::collections::BTreeMap<String, String> {
    svc.metadata.annotations.clone().unwrap_or_default()
}

fn has_finalizer(svc: &Service) -> bool {
    svc.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == annotations::FINALIZER))
}

fn is_known(svc: &Service) -> bool {
    let notes = notes(svc);
    notes.contains_key(annotations::AUTO_ASSIGN)
        || notes.contains_key(annotations::STATUS)
        || has_finalizer(svc)
}

fn is_per_pod(svc: &Service) -> bool {
    notes(svc).get(annotations::MODE).map(String::as_str) == Some("per-pod")
}

fn service_view(svc: &Service) -> ServiceView {
    let notes = notes(svc);
    ServiceView {
        namespace: svc.metadata.namespace.clone().unwrap_or_default(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        created: seconds(svc.metadata.creation_timestamp.as_ref()),
        opted_in: notes.get(annotations::AUTO_ASSIGN).map(String::as_str) == Some("true"),
        per_pod: is_per_pod(svc),
        status: notes.get(annotations::STATUS).cloned(),
        address: notes.get(annotations::ADDRESS).cloned(),
        finalizer: has_finalizer(svc),
        deleting_since: svc
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
    }
}
