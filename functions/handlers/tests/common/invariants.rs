//! The invariant checker shared by the fault, churn and concurrency tests. It reads what the
//! servers hold (moto's ELBv2 and DynamoDB, the API server's Services) and lists every breach:
//! - every (NLB, port) has at most one listener and at most one claim;
//! - the claims agree with each other (port item, owner record, NLB item);
//! - every project-tagged listener and target group has a claim and a live Service;
//! - every live opted-in Service has a claimed listener for each of its ports;
//! - no NLB holds more listeners than its quota.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use nlb_port_pool::annotations;

use super::Stack;

type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, key: &str) -> String {
    match item.get(key) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => String::new(),
    }
}

impl Stack {
    async fn all_items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scanning claims");
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
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
                .expect("tags");
            for t in d.tag_descriptions() {
                let map = t
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect();
                out.insert(t.resource_arn().unwrap_or_default().to_owned(), map);
            }
        }
        out
    }

    /// Every breach of the invariants, in words; empty when all hold. `namespaces` are the
    /// namespaces whose Services the test made.
    pub async fn invariant_breaches(&self, namespaces: &[String], quota: usize) -> Vec<String> {
        let mut breaches = Vec::new();
        let items = self.all_items().await;
        // Claims: port items, owner records, NLB items.
        let mut ports: BTreeMap<(String, u16), String> = BTreeMap::new();
        let mut owners: BTreeMap<(String, String), (String, u16)> = BTreeMap::new();
        let mut nlb_sets: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for i in &items {
            let (pk, sk) = (text(i, "pk"), text(i, "sk"));
            if let Some(nlb) = pk.strip_prefix("nlb#") {
                if sk == "meta" {
                    let set = match i.get("ports") {
                        Some(AttributeValue::Ns(ns)) => {
                            ns.iter().filter_map(|p| p.parse().ok()).collect()
                        }
                        _ => BTreeSet::new(),
                    };
                    nlb_sets.insert(nlb.to_owned(), set);
                } else if let Some(port) =
                    sk.strip_prefix("port#").and_then(|p| p.parse::<u16>().ok())
                {
                    ports.insert((nlb.to_owned(), port), text(i, "uid"));
                }
            } else if let Some(uid) = pk.strip_prefix("owner#") {
                let port: u16 = text(i, "port").parse().unwrap_or_default();
                owners.insert((uid.to_owned(), sk.clone()), (text(i, "nlbArn"), port));
            }
        }
        for ((uid, key), (nlb, port)) in &owners {
            if ports.get(&(nlb.clone(), *port)) != Some(uid) {
                breaches.push(format!(
                    "owner record {uid}/{key} names port {port} of {nlb}, which it does not hold"
                ));
            }
        }
        for ((nlb, port), uid) in &ports {
            if !owners
                .iter()
                .any(|((u, _), (n, p))| u == uid && n == nlb && p == port)
            {
                breaches.push(format!(
                    "port item {nlb}:{port} of {uid} has no owner record"
                ));
            }
            if !nlb_sets.get(nlb).is_some_and(|s| s.contains(port)) {
                breaches.push(format!(
                    "port item {nlb}:{port} is missing from the NLB item"
                ));
            }
        }
        for (nlb, set) in &nlb_sets {
            for port in set {
                if !ports.contains_key(&(nlb.clone(), *port)) {
                    breaches.push(format!(
                        "NLB item {nlb} lists port {port} without a port item"
                    ));
                }
            }
        }
        // Live Services.
        let mut live: BTreeMap<String, Service> = BTreeMap::new();
        for ns in namespaces {
            let api: Api<Service> = Api::namespaced(self.admin.clone(), ns);
            for s in api
                .list(&ListParams::default())
                .await
                .expect("listing Services")
                .items
            {
                live.insert(s.metadata.uid.clone().unwrap_or_default(), s);
            }
        }
        // Listeners.
        let mut listener_arns = Vec::new();
        let mut per_port: BTreeMap<(String, u16), usize> = BTreeMap::new();
        let mut listener_info = Vec::new();
        for nlb in &self.nlbs {
            let described = self
                .elb
                .describe_listeners()
                .load_balancer_arn(&nlb.arn)
                .send()
                .await
                .expect("listeners");
            let count = described.listeners().len();
            if count > quota {
                breaches.push(format!(
                    "NLB {} holds {count} listeners (quota {quota})",
                    nlb.arn
                ));
            }
            for l in described.listeners() {
                let port = u16::try_from(l.port().unwrap_or_default()).unwrap_or_default();
                *per_port.entry((nlb.arn.clone(), port)).or_default() += 1;
                let arn = l.listener_arn().unwrap_or_default().to_owned();
                listener_arns.push(arn.clone());
                listener_info.push((arn, nlb.arn.clone(), port));
            }
        }
        for ((nlb, port), n) in &per_port {
            if *n > 1 {
                breaches.push(format!("port {port} of {nlb} has {n} listeners"));
            }
        }
        let tags = self.tags(&listener_arns).await;
        for (arn, nlb, port) in &listener_info {
            let Some(uid) = tags
                .get(arn)
                .and_then(|t| t.get("nlb-port-pool/service-uid"))
            else {
                continue;
            };
            if ports.get(&(nlb.clone(), *port)) != Some(uid) {
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
        // Target groups of this stack's VPC.
        let groups = self
            .elb
            .describe_target_groups()
            .send()
            .await
            .expect("target groups");
        let group_arns: Vec<String> = groups
            .target_groups()
            .iter()
            .filter(|g| g.vpc_id() == Some(self.nlbs[0].vpc_id.as_str()))
            .filter_map(|g| g.target_group_arn().map(str::to_owned))
            .collect();
        let group_tags = self.tags(&group_arns).await;
        for arn in &group_arns {
            let t = group_tags.get(arn);
            let (Some(uid), Some(key)) = (
                t.and_then(|t| t.get("nlb-port-pool/service-uid")),
                t.and_then(|t| t.get("nlb-port-pool/listener")),
            ) else {
                continue;
            };
            if !owners.contains_key(&(uid.clone(), key.clone())) {
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
            let ann = s.metadata.annotations.clone().unwrap_or_default();
            if ann.get(annotations::AUTO_ASSIGN).map(String::as_str) != Some("true")
                || s.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let wanted: BTreeSet<u16> = s
                .spec
                .iter()
                .flat_map(|sp| sp.ports.iter().flatten())
                .map(|p| p.port as u16)
                .collect();
            let held: BTreeSet<u16> = owners
                .iter()
                .filter(|((u, _), _)| u == uid)
                .filter_map(|((_, key), _)| key.split('-').next()?.parse().ok())
                .collect();
            if wanted != held {
                breaches.push(format!(
                    "Service {:?} wants ports {wanted:?} but holds {held:?}",
                    s.metadata.name
                ));
            }
            for ((u, key), (nlb, port)) in owners.iter().filter(|((u, _), _)| u == uid) {
                if per_port.get(&(nlb.clone(), *port)).copied().unwrap_or(0) != 1 {
                    breaches.push(format!(
                        "Service {u} listener {key}: no listener on port {port}"
                    ));
                }
            }
        }
        breaches
    }
}
