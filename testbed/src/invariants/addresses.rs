//! The addresses the system writes: every `nlb.port-manager/address` (on a Service, or on a
//! pod in per-pod mode) is `DNS:port`, with the DNS name of the NLB that holds the listener,
//! and so is each entry of `nlb.port-manager/allocations`. A game server reads its address
//! through the Downward API and advertises it: `:31759` or another NLB's name strands players.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use nlb_port_pool::contract::annotations::{self, AllocationRecord};

use super::World;

/// What one object advertises: its kind and name, and its output annotations.
struct Advertiser {
    what: String,
    annotations: BTreeMap<String, String>,
}

impl World {
    /// Every address annotation that is not `DNS:port` of the NLB holding the listener.
    pub(super) async fn address_breaches(&self) -> Vec<String> {
        let mut breaches = Vec::new();
        let mut advertised: Vec<(Advertiser, Vec<AllocationRecord>)> = Vec::new();
        for a in self.advertisers().await {
            let Some(json) = a.annotations.get(annotations::ALLOCATIONS) else {
                breaches.push(format!("{} has an address but no allocations", a.what));
                continue;
            };
            match serde_json::from_str::<Vec<AllocationRecord>>(json) {
                Ok(r) => advertised.push((a, r)),
                Err(e) => breaches.push(format!("{}: allocations are not readable ({e})", a.what)),
            }
        }
        let nlbs: BTreeSet<String> = advertised
            .iter()
            .flat_map(|(_, r)| r.iter().map(|r| r.nlb_arn.clone()))
            .collect();
        let dns = self.dns_names(&nlbs).await;
        for (a, records) in &advertised {
            let what = &a.what;
            for r in records {
                match dns.get(&r.nlb_arn) {
                    Some(name) if *name == r.dns => {}
                    Some(name) => breaches.push(format!(
                        "{what} advertises port {} as on {:?}, but its NLB {} is {name}",
                        r.port, r.dns, r.nlb_arn
                    )),
                    None => breaches.push(format!(
                        "{what} advertises port {} of NLB {}, which does not exist",
                        r.port, r.nlb_arn
                    )),
                }
            }
            // `address` is the first listener's `DNS:port`.
            let address = a.annotations.get(annotations::ADDRESS);
            let expected = records.first().map(|r| format!("{}:{}", r.dns, r.port));
            if address != expected.as_ref() {
                breaches.push(format!(
                    "{what}: address {address:?}, but its first allocation is {expected:?}"
                ));
            }
        }
        breaches
    }

    /// The Services and pods of the test's namespaces that carry output annotations.
    async fn advertisers(&self) -> Vec<Advertiser> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            let services: Api<Service> = Api::namespaced(self.admin.clone(), ns);
            let list = services
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("listing the Services of {ns}: {e}"));
            for s in list.items {
                out.push(Advertiser {
                    what: format!("Service {ns}/{}", s.metadata.name.unwrap_or_default()),
                    annotations: s.metadata.annotations.unwrap_or_default(),
                });
            }
            let pods: Api<Pod> = Api::namespaced(self.admin.clone(), ns);
            let list = pods
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("listing the pods of {ns}: {e}"));
            for p in list.items {
                out.push(Advertiser {
                    what: format!("pod {ns}/{}", p.metadata.name.unwrap_or_default()),
                    annotations: p.metadata.annotations.unwrap_or_default(),
                });
            }
        }
        out.retain(|a| {
            a.annotations.contains_key(annotations::ADDRESS)
                || a.annotations.contains_key(annotations::ALLOCATIONS)
        });
        out
    }

    /// The DNS names of `nlbs` that exist.
    async fn dns_names(&self, nlbs: &BTreeSet<String>) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let arns: Vec<String> = nlbs.iter().cloned().collect();
        for chunk in arns.chunks(20) {
            // One by one where a batch fails: an NLB that is gone fails the whole call.
            let described = self
                .elb
                .describe_load_balancers()
                .set_load_balancer_arns(Some(chunk.to_vec()))
                .send()
                .await;
            let found = match described {
                Ok(d) => d.load_balancers().to_vec(),
                Err(_) => {
                    let mut one_by_one = Vec::new();
                    for arn in chunk {
                        if let Ok(d) = self
                            .elb
                            .describe_load_balancers()
                            .load_balancer_arns(arn)
                            .send()
                            .await
                        {
                            one_by_one.extend(d.load_balancers().iter().cloned());
                        }
                    }
                    one_by_one
                }
            };
            for lb in found {
                if let (Some(arn), Some(dns)) = (lb.load_balancer_arn(), lb.dns_name()) {
                    out.insert(arn.to_owned(), dns.to_owned());
                }
            }
        }
        out
    }
}
