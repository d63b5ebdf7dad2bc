//! The invariant checker shared by the fault, churn, concurrency and end-to-end tests. It reads
//! what the servers hold (moto's ELBv2 and DynamoDB, the API server's Services) and lists every
//! breach, in words:
//! - every (NLB, port) has at most one listener and at most one claim;
//! - the claims agree with each other (port item, owner record, NLB item);
//! - every project-tagged listener and target group has a claim and a live Service;
//! - every live opted-in Service has a claimed listener for each of its ports (per-pod mode:
//!   holds none of its own);
//! - no pod advertises a port its own claim does not hold (per-pod mode);
//! - no NLB holds more listeners than its quota;
//! - every address written (Service or pod) is `DNS:port` of the NLB holding the listener.

mod addresses;
mod claims;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use nlb_port_pool::contract::annotations;

pub use claims::Claims;

/// The tag naming the Service (by uid) a listener or target group belongs to.
const SERVICE_UID_TAG: &str = "nlb-port-pool/service-uid";
/// The tag naming the listener key (`7777-tcp`) a target group serves.
const LISTENER_TAG: &str = "nlb-port-pool/listener";
/// The tag naming the pod a per-pod Service's listener or target group is for.
const POD_TAG: &str = "nlb-port-pool/pod";

/// Where a test's system keeps its state: the clients and the names to read it by.
#[derive(Clone)]
pub struct World {
    /// A cluster-admin client.
    pub admin: kube::Client,
    /// ELBv2 on moto.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// DynamoDB on moto.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The claims table.
    pub table: String,
    /// The ARNs of the pool's NLBs.
    pub nlb_arns: Vec<String>,
    /// The VPC of the pool (target groups elsewhere belong to other tests).
    pub vpc_id: String,
    /// The namespaces whose Services the test made.
    pub namespaces: Vec<String>,
}

/// A listener as found on an NLB.
struct FoundListener {
    arn: String,
    nlb: String,
    port: u16,
}

impl World {
    /// Every breach of the invariants; empty when all hold. `quota` is the listeners an NLB
    /// may hold.
    pub async fn breaches(&self, quota: usize) -> Vec<String> {
        let claims = Claims::read(&self.dynamodb, &self.table).await;
        let mut breaches = claims.inconsistencies();
        let live = self.live_services().await;

        // Listeners: one per port, within quota, each with a claim and a live Service.
        let mut listeners = Vec::new();
        let mut per_port: BTreeMap<(String, u16), usize> = BTreeMap::new();
        for nlb in &self.nlb_arns {
            let found = self.listeners_of(nlb).await;
            if found.len() > quota {
                let n = found.len();
                breaches.push(format!("NLB {nlb} holds {n} listeners (quota {quota})"));
            }
            for l in found {
                *per_port.entry((l.nlb.clone(), l.port)).or_default() += 1;
                listeners.push(l);
            }
        }
        for ((nlb, port), n) in &per_port {
            if *n > 1 {
                breaches.push(format!("port {port} of {nlb} has {n} listeners"));
            }
        }
        let arns: Vec<String> = listeners.iter().map(|l| l.arn.clone()).collect();
        let tags = self.tags(&arns).await;
        for l in &listeners {
            let Some(uid) = tags.get(&l.arn).and_then(|t| t.get(SERVICE_UID_TAG)) else {
                continue;
            };
            let (arn, port) = (&l.arn, l.port);
            if claims.ports.get(&(l.nlb.clone(), port)) != Some(uid) {
                breaches.push(format!(
                    "listener {arn} (port {port}) has no claim of its Service {uid}"
                ));
            }
            if !live.contains_key(uid) {
                breaches.push(format!(
                    "listener {arn} belongs to Service {uid}, which is gone"
                ));
            }
        }

        // Target groups of the pool's VPC: each with a claim and a live Service.
        let groups = self.target_groups().await;
        let group_tags = self.tags(&groups).await;
        for arn in &groups {
            let t = group_tags.get(arn);
            let (Some(uid), Some(key)) = (
                t.and_then(|t| t.get(SERVICE_UID_TAG)),
                t.and_then(|t| t.get(LISTENER_TAG)),
            ) else {
                continue;
            };
            // A pod's record is keyed `pod#<pod>#<listener key>` in its Service's partition.
            let record = match t.and_then(|t| t.get(POD_TAG)) {
                Some(pod) => format!("pod#{pod}#{key}"),
                None => key.clone(),
            };
            if !claims.owners.contains_key(&(uid.clone(), record)) {
                breaches.push(format!(
                    "target group {arn} has no claim of Service {uid} listener {key}"
                ));
            }
            if !live.contains_key(uid) {
                breaches.push(format!(
                    "target group {arn} belongs to Service {uid}, which is gone"
                ));
            }
        }

        // Every live opted-in Service that is not deleting holds its listeners.
        for (uid, s) in &live {
            breaches.extend(service_breaches(uid, s, &claims, &per_port));
        }
        breaches.extend(self.pod_breaches(&live, &claims).await);
        breaches.extend(self.address_breaches().await);
        breaches
    }

    /// Pods that advertise a port (`allocations`) no claim of theirs holds.
    async fn pod_breaches(&self, live: &BTreeMap<String, Service>, claims: &Claims) -> Vec<String> {
        let mut breaches = Vec::new();
        for ns in &self.namespaces {
            let api: Api<Pod> = Api::namespaced(self.admin.clone(), ns);
            let pods = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("listing the pods of {ns}: {e}"));
            for pod in pods.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let ann = pod.metadata.annotations.clone().unwrap_or_default();
                let Some(json) = ann.get(annotations::ALLOCATIONS) else {
                    continue;
                };
                let Ok(records) = serde_json::from_str::<Vec<annotations::AllocationRecord>>(json)
                else {
                    breaches.push(format!("pod {name}: allocations are not readable: {json}"));
                    continue;
                };
                let prefix = format!("pod#{name}#");
                for r in records {
                    let held = claims.owners.iter().any(|((uid, sk), (nlb, port))| {
                        sk.starts_with(&prefix)
                            && *nlb == r.nlb_arn
                            && *port == r.port
                            && live.contains_key(uid)
                    });
                    if !held {
                        breaches.push(format!(
                            "pod {name} advertises port {} of {}, which no claim of its own holds",
                            r.port, r.nlb_arn
                        ));
                    }
                }
            }
        }
        breaches
    }

    /// The Services of the test's namespaces, by uid.
    pub async fn live_services(&self) -> BTreeMap<String, Service> {
        let mut live = BTreeMap::new();
        for ns in &self.namespaces {
            let api: Api<Service> = Api::namespaced(self.admin.clone(), ns);
            let list = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("listing the Services of {ns}: {e}"));
            for s in list.items {
                live.insert(s.metadata.uid.clone().unwrap_or_default(), s);
            }
        }
        live
    }

    async fn listeners_of(&self, nlb: &str) -> Vec<FoundListener> {
        let described = self
            .elb
            .describe_listeners()
            .load_balancer_arn(nlb)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describing the listeners of {nlb}: {e}"));
        described
            .listeners()
            .iter()
            .map(|l| FoundListener {
                arn: l.listener_arn().unwrap_or_default().to_owned(),
                nlb: nlb.to_owned(),
                port: u16::try_from(l.port().unwrap_or_default()).unwrap_or_default(),
            })
            .collect()
    }

    async fn target_groups(&self) -> Vec<String> {
        let groups = self
            .elb
            .describe_target_groups()
            .send()
            .await
            .unwrap_or_else(|e| panic!("describing target groups: {e}"));
        groups
            .target_groups()
            .iter()
            .filter(|g| g.vpc_id() == Some(self.vpc_id.as_str()))
            .filter_map(|g| g.target_group_arn().map(str::to_owned))
            .collect()
    }

    async fn tags(&self, arns: &[String]) -> HashMap<String, HashMap<String, String>> {
        let mut out = HashMap::new();
        for chunk in arns.chunks(20) {
            let d = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("describing tags: {e}"));
            for t in d.tag_descriptions() {
                let map = t
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect();
                out.insert(t.resource_arn().unwrap_or_default().to_owned(), map);
            }
        }
        out
    }
}

/// The breaches of one live Service: an opted-in Service that is not being deleted holds a
/// claim and exactly one listener for each of its ports.
fn service_breaches(
    uid: &str,
    s: &Service,
    claims: &Claims,
    per_port: &BTreeMap<(String, u16), usize>,
) -> Vec<String> {
    let ann = s.metadata.annotations.clone().unwrap_or_default();
    if ann.get(annotations::AUTO_ASSIGN).map(String::as_str) != Some("true")
        || s.metadata.deletion_timestamp.is_some()
    {
        return Vec::new();
    }
    let mut breaches = Vec::new();
    let per_pod = ann.get(annotations::MODE).map(String::as_str) == Some("per-pod");
    let own = |sk: &str| !sk.starts_with("pod#");
    if per_pod {
        if let Some(((_, key), _)) = claims
            .owners
            .iter()
            .find(|((u, sk), _)| u == uid && own(sk))
        {
            breaches.push(format!(
                "per-pod Service {uid} holds a listener of its own ({key})"
            ));
        }
        return breaches;
    }
    let wanted: BTreeSet<u16> = s
        .spec
        .iter()
        .flat_map(|sp| sp.ports.iter().flatten())
        .filter_map(|p| u16::try_from(p.port).ok())
        .collect();
    let mine: Vec<(&String, &(String, u16))> = claims
        .owners
        .iter()
        .filter(|((u, sk), _)| u == uid && own(sk))
        .map(|((_, key), at)| (key, at))
        .collect();
    let held: BTreeSet<u16> = mine
        .iter()
        .filter_map(|(key, _)| key.split('-').next()?.parse().ok())
        .collect();
    if wanted != held {
        let name = s.metadata.name.as_deref().unwrap_or_default();
        breaches.push(format!(
            "Service {name} wants ports {wanted:?} but holds {held:?}"
        ));
    }
    for (key, (nlb, port)) in mine {
        if per_port.get(&(nlb.clone(), *port)).copied().unwrap_or(0) != 1 {
            breaches.push(format!(
                "Service {uid} listener {key}: no listener on port {port}"
            ));
        }
    }
    breaches
}
