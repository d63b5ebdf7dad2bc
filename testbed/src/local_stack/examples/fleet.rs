//! A per-pod fleet of the examples: a StatefulSet whose pods a per-pod Service selects, each pod
//! given an address of its own (written on the pod). Waited for until every pod has one, then
//! shown as a table: the addresses come at allocation, before the pods are Ready.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use nlb_port_pool::contract::annotations;
use nlb_port_pool::contract::pod_model::REACHABLE_GATE;

/// The label naming a node's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A StatefulSet whose pods a per-pod Service selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Its namespace.
    pub namespace: String,
    /// The StatefulSet's name, which its pods' names start with.
    pub name: String,
    /// The per-pod Service selecting its pods.
    pub service: String,
    /// Its `spec.replicas`.
    pub replicas: u32,
    /// Its `spec.ordinals.start`: the first pod's ordinal.
    pub first_ordinal: u32,
    /// Its `spec.selector.matchLabels`.
    pub selector: BTreeMap<String, String>,
}

impl std::fmt::Display for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One pod of a fleet, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetPod {
    /// Its name.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// That node's zone.
    pub zone: String,
    /// Its IP.
    pub ip: String,
    /// Its `nlb.port-manager/address`.
    pub address: String,
    /// Its `nlb.port-manager/status`.
    pub status: String,
}

impl Fleet {
    /// The names of the pods the StatefulSet makes, in order.
    pub fn pod_names(&self) -> Vec<String> {
        (self.first_ordinal..self.first_ordinal + self.replicas)
            .map(|i| format!("{}-{i}", self.name))
            .collect()
    }

    /// Its selector as `kubectl -l` and the API take it.
    pub fn label_selector(&self) -> String {
        let pairs: Vec<String> = self
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(",")
    }

    /// Waits until every pod of the fleet exists and carries its address; returns them, or
    /// fails naming, per pod, what did not happen.
    pub async fn wait_for_addresses(
        &self,
        client: &kube::Client,
        timeout: Duration,
    ) -> Result<Vec<FleetPod>> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let params = ListParams::default().labels(&self.label_selector());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pods: BTreeMap<String, Pod> = api
                .list(&params)
                .await?
                .items
                .into_iter()
                .filter_map(|p| Some((p.metadata.name.clone()?, p)))
                .collect();
            let waiting = self.waiting(&pods);
            if waiting.is_empty() {
                return self.rows(client, &pods).await;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "StatefulSet {self} (per-pod Service {}): not every pod had an address \
                     after {timeout:?}: {}",
                    self.service,
                    waiting.join("; ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What each pod without an address still waits for.
    fn waiting(&self, pods: &BTreeMap<String, Pod>) -> Vec<String> {
        let names = self.pod_names();
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let previous = i.checked_sub(1).map(|p| names[p].as_str());
            if let Some(reason) = missing(name, pods.get(name), previous, pods) {
                out.push(reason);
            }
        }
        out
    }

    async fn rows(
        &self,
        client: &kube::Client,
        pods: &BTreeMap<String, Pod>,
    ) -> Result<Vec<FleetPod>> {
        let nodes: Api<Node> = Api::all(client.clone());
        let zones: BTreeMap<String, String> = nodes
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|n| {
                let zone = n.metadata.labels.as_ref()?.get(ZONE_LABEL)?.clone();
                Some((n.metadata.name?, zone))
            })
            .collect();
        Ok(self
            .pod_names()
            .into_iter()
            .filter_map(|name| {
                let pod = pods.get(&name)?;
                let node = pod.spec.as_ref()?.node_name.clone().unwrap_or_default();
                Some(FleetPod {
                    zone: zones.get(&node).cloned().unwrap_or_default(),
                    ip: ip(pod).unwrap_or_default(),
                    address: annotation(pod, annotations::ADDRESS).unwrap_or_default(),
                    status: annotation(pod, annotations::STATUS).unwrap_or_default(),
                    node,
                    name,
                })
            })
            .collect())
    }
}

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

fn ip(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
}

/// The status of a pod's condition `kind` (`True`, `False`), `none` when it has none.
fn condition(pod: &Pod, kind: &str) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == kind))
        .map_or_else(|| "none".to_owned(), |c| c.status.clone())
}

/// Why pod `name` (`pod`, if it exists) has no address yet; `None` when it has one.
/// `previous` is the pod before it, which an OrderedReady StatefulSet waits to be Ready.
fn missing(
    name: &str,
    pod: Option<&Pod>,
    previous: Option<&str>,
    pods: &BTreeMap<String, Pod>,
) -> Option<String> {
    let Some(pod) = pod else {
        let before = previous.map(|p| (p, pods.get(p)));
        return Some(match before {
            Some((p, Some(before))) if condition(before, "Ready") != "True" => format!(
                "{name} not made: the StatefulSet (OrderedReady) makes it once {p} is Ready, and \
                 {p} is not (ContainersReady {}, {REACHABLE_GATE} {})",
                condition(before, "ContainersReady"),
                condition(before, REACHABLE_GATE)
            ),
            Some((p, None)) => format!("{name} not made: {p} is not made either"),
            _ => format!("{name} not made by the StatefulSet controller"),
        });
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return Some(format!("{name} is being deleted"));
    }
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let Some(node) = node else {
        return Some(format!("{name} not scheduled on a node"));
    };
    let Some(ip) = ip(pod) else {
        return Some(format!(
            "{name} on {node} has no IP (kwok did not start it)"
        ));
    };
    if annotation(pod, annotations::ADDRESS).is_some_and(|a| !a.is_empty()) {
        return None;
    }
    Some(format!(
        "{name} ({ip} on {node}) has no {} (status: {})",
        annotations::ADDRESS,
        annotation(pod, annotations::STATUS).unwrap_or_else(|| "none yet".to_owned())
    ))
}

/// The fleet's pods as a table under a line naming the fleet.
pub fn render(fleet: &Fleet, pods: &[FleetPod]) -> String {
    let mut rows = vec![[
        "POD".to_owned(),
        "NODE".to_owned(),
        "ZONE".to_owned(),
        "POD IP".to_owned(),
        format!("ADDRESS ({})", annotations::ADDRESS),
        "STATUS".to_owned(),
    ]];
    rows.extend(pods.iter().map(|p| {
        [
            p.name.clone(),
            p.node.clone(),
            p.zone.clone(),
            p.ip.clone(),
            p.address.clone(),
            p.status.clone(),
        ]
    }));
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "Pods of the per-pod Service {}/{} (StatefulSet {}, {} replicas):\n\n",
        fleet.namespace, fleet.service, fleet.name, fleet.replicas
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>, ip: Option<&str>, address: Option<&str>) -> Pod {
        let mut annotations = serde_json::Map::new();
        if let Some(a) = address {
            annotations.insert(annotations::ADDRESS.into(), a.into());
            annotations.insert(annotations::STATUS.into(), "Allocated".into());
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"containers": [], "nodeName": node},
            "status": {"podIP": ip, "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "ContainersReady", "status": "True"},
                {"type": REACHABLE_GATE, "status": "False"},
            ]},
        }))
        .expect("a pod")
    }

    fn fleet() -> Fleet {
        Fleet {
            namespace: "games".into(),
            name: "fleet".into(),
            service: "fleet".into(),
            replicas: 3,
            first_ordinal: 0,
            selector: [("app".to_owned(), "fleet".to_owned())].into(),
        }
    }

    #[test]
    fn names_what_each_pod_without_an_address_waits_for() {
        // GIVEN fleet-0 with its address but not Ready, fleet-1 not made
        let pods: BTreeMap<String, Pod> = [(
            "fleet-0".to_owned(),
            pod(
                "fleet-0",
                Some("kwok-a"),
                Some("10.0.1.130"),
                Some("nlb:30001"),
            ),
        )]
        .into();

        // WHEN what is missing is asked
        let waiting = fleet().waiting(&pods);

        // THEN fleet-1 waits for fleet-0's readiness, fleet-2 for fleet-1
        assert_eq!(waiting.len(), 2, "{waiting:?}");
        assert!(
            waiting[0].contains("fleet-1 not made")
                && waiting[0].contains("fleet-0 is not")
                && waiting[0].contains("nlb.port-manager/reachable False"),
            "{}",
            waiting[0]
        );
        assert_eq!(waiting[1], "fleet-2 not made: fleet-1 is not made either");
    }

    #[test]
    fn a_pod_running_without_an_address_names_its_status() {
        let running = pod("fleet-0", Some("kwok-b"), Some("10.0.2.130"), None);
        let reason = missing("fleet-0", Some(&running), None, &BTreeMap::new());
        assert_eq!(
            reason.as_deref(),
            Some(
                "fleet-0 (10.0.2.130 on kwok-b) has no nlb.port-manager/address (status: none yet)"
            )
        );
        let unscheduled = pod("fleet-0", None, None, None);
        let reason = missing("fleet-0", Some(&unscheduled), None, &BTreeMap::new());
        assert_eq!(reason.as_deref(), Some("fleet-0 not scheduled on a node"));
    }

    #[test]
    fn renders_one_aligned_row_per_pod() {
        let pods = [FleetPod {
            name: "fleet-0".into(),
            node: "kwok-a".into(),
            zone: "us-west-2a".into(),
            ip: "10.0.1.130".into(),
            address: "nlb-1.elb.amazonaws.com:30001".into(),
            status: "Ready".into(),
        }];
        let table = render(&fleet(), &pods);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "Pods of the per-pod Service games/fleet (StatefulSet fleet, 3 replicas):"
        );
        assert!(lines[2].starts_with("POD      NODE    ZONE        POD IP"));
        assert!(lines[3].starts_with("fleet-0  kwok-a  us-west-2a  10.0.1.130"));
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(cells[4..], ["nlb-1.elb.amazonaws.com:30001", "Ready"]);
        let status_column = lines[2].find("STATUS");
        assert_eq!(status_column, lines[3].find("Ready"), "{table}");
    }
}
