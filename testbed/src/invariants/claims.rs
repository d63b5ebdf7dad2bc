//! The claims table as the invariant checker reads it: port items, owner records, NLB items.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

type Item = HashMap<String, AttributeValue>;

/// Every claim in the table, indexed the ways the checks need.
#[derive(Debug, Default)]
pub struct Claims {
    /// (NLB ARN, port) -> the uid the port item names.
    pub ports: BTreeMap<(String, u16), String>,
    /// (uid, listener key) -> (NLB ARN, port) the owner record names.
    pub owners: BTreeMap<(String, String), (String, u16)>,
    /// NLB ARN -> the ports its NLB item counts.
    pub nlb_sets: BTreeMap<String, BTreeSet<u16>>,
}

fn text(item: &Item, key: &str) -> String {
    match item.get(key) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => String::new(),
    }
}

impl Claims {
    /// Reads the whole table (consistent reads, every page).
    pub async fn read(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Self {
        let mut claims = Claims::default();
        let mut start = None;
        loop {
            let page = dynamodb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("scanning the claims table {table}: {e}"));
            for item in page.items() {
                claims.add(item);
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return claims;
            }
        }
    }

    fn add(&mut self, i: &Item) {
        let (pk, sk) = (text(i, "pk"), text(i, "sk"));
        if let Some(nlb) = pk.strip_prefix("nlb#") {
            if sk == "meta" {
                let set = match i.get("ports") {
                    Some(AttributeValue::Ns(ns)) => {
                        ns.iter().filter_map(|p| p.parse().ok()).collect()
                    }
                    _ => BTreeSet::new(),
                };
                self.nlb_sets.insert(nlb.to_owned(), set);
            } else if let Some(port) = sk.strip_prefix("port#").and_then(|p| p.parse().ok()) {
                self.ports.insert((nlb.to_owned(), port), text(i, "uid"));
            }
        } else if let Some(uid) = pk.strip_prefix("owner#") {
            let port: u16 = text(i, "port").parse().unwrap_or_default();
            self.owners
                .insert((uid.to_owned(), sk), (text(i, "nlbArn"), port));
        }
    }

    /// Claims held: port items (each has its owner record and NLB entry when consistent).
    pub fn held(&self) -> usize {
        self.ports.len()
    }

    /// Items that hold a claim: port items, owner records and NLB items counting ports (an
    /// NLB item with no ports, or the sweep's cursor, holds none).
    pub fn items(&self) -> usize {
        let nlb_items = self.nlb_sets.values().filter(|s| !s.is_empty()).count();
        self.ports.len() + self.owners.len() + nlb_items
    }

    /// Where the three kinds of item disagree, in words.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut breaches = Vec::new();
        for ((uid, key), (nlb, port)) in &self.owners {
            if self.ports.get(&(nlb.clone(), *port)) != Some(uid) {
                breaches.push(format!(
                    "owner record {uid}/{key} names port {port} of {nlb}, which it does not hold"
                ));
            }
        }
        for ((nlb, port), uid) in &self.ports {
            if !self
                .owners
                .iter()
                .any(|((u, _), (n, p))| u == uid && n == nlb && p == port)
            {
                breaches.push(format!(
                    "port item {nlb}:{port} of {uid} has no owner record"
                ));
            }
            if !self.nlb_sets.get(nlb).is_some_and(|s| s.contains(port)) {
                breaches.push(format!(
                    "port item {nlb}:{port} is missing from the NLB item"
                ));
            }
        }
        for (nlb, set) in &self.nlb_sets {
            for port in set {
                if !self.ports.contains_key(&(nlb.clone(), *port)) {
                    breaches.push(format!(
                        "NLB item {nlb} lists port {port} without a port item"
                    ));
                }
            }
        }
        breaches
    }
}
