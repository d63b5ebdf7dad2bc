//! `get` without a name: every Service the system knows (and each pod of a per-pod Service),
//! one row per listener: its address, protocol, status and targets with their health. The
//! table `make run` prints.

use anyhow::Result;
use futures::{StreamExt as _, TryStreamExt as _};
use nlb_port_pool::contract::annotations::{self, AllocationRecord};
use serde::Serialize;

use crate::collect::Sources;
use crate::get::TargetDetail;

/// One listener of a Service or pod.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerRow {
    /// `namespace/name`, with ` pod POD` for a per-pod listener.
    pub owner: String,
    /// The Service port's name.
    pub port_name: String,
    /// `NLB_DNS:port`, or the status when there is no listener (`Pending: ...`).
    pub address: String,
    /// The listener protocol (`TLS` when it terminates TLS), `-` without a listener.
    pub protocol: String,
    /// The Service's or pod's status.
    pub status: String,
    /// The targets and their health.
    pub targets: Vec<TargetDetail>,
}

/// Every listener of every Service (and per-pod pod) `sources` can see.
pub async fn list(sources: &Sources) -> Result<Vec<ListenerRow>> {
    let services = sources.known_services().await?;
    let pods = sources.pods_of(&services).await?;
    let mut owners: Vec<(String, std::collections::BTreeMap<String, String>)> = Vec::new();
    for svc in &services {
        let key = format!(
            "{}/{}",
            svc.metadata.namespace.as_deref().unwrap_or_default(),
            svc.metadata.name.as_deref().unwrap_or_default()
        );
        let notes = svc.metadata.annotations.clone().unwrap_or_default();
        let per_pod = notes.get(annotations::MODE).map(String::as_str) == Some("per-pod");
        if per_pod {
            for (_, pod) in pods.iter().filter(|p| p.0 == key) {
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                let pod_notes = pod.metadata.annotations.clone().unwrap_or_default();
                owners.push((format!("{key} pod {name}"), pod_notes));
            }
        } else {
            owners.push((key, notes));
        }
    }
    let rows: Vec<Vec<ListenerRow>> = futures::stream::iter(owners)
        .map(|(owner, notes)| async move { rows_of(sources, owner, &notes).await })
        .buffered(8)
        .try_collect()
        .await?;
    Ok(rows.into_iter().flatten().collect())
}

async fn rows_of(
    sources: &Sources,
    owner: String,
    notes: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<ListenerRow>> {
    let status = notes.get(annotations::STATUS).cloned().unwrap_or_default();
    let records: Vec<AllocationRecord> = notes
        .get(annotations::ALLOCATIONS)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    if records.is_empty() {
        return Ok(vec![ListenerRow {
            owner,
            port_name: "-".into(),
            address: if status.is_empty() {
                "no status yet".into()
            } else {
                status.clone()
            },
            protocol: "-".into(),
            status,
            targets: vec![],
        }]);
    }
    let mut out = Vec::new();
    for r in records {
        out.push(ListenerRow {
            owner: owner.clone(),
            port_name: r.name.clone(),
            address: format!("{}:{}", r.dns, r.port),
            protocol: r.listener_protocol(),
            status: status.clone(),
            targets: crate::get::targets_of(sources, &r.target_group_arn).await?,
        });
    }
    Ok(out)
}

/// The rows as a table: SERVICE (PORT), ADDRESS, PROTOCOL, STATUS, TARGETS.
pub fn render(rows: &[ListenerRow], wide: bool) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let targets = if r.targets.is_empty() {
                "(none)".to_owned()
            } else {
                r.targets
                    .iter()
                    .map(|t| match (&t.reason, wide) {
                        (Some(reason), true) => format!("{} {} ({reason})", t.target, t.state),
                        _ => format!("{} {}", t.target, t.state),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let status = r.status.split(':').next().unwrap_or_default().to_owned();
            vec![
                format!("{} ({})", r.owner, r.port_name),
                r.address.clone(),
                r.protocol.clone(),
                status,
                targets,
            ]
        })
        .collect();
    crate::render::table(
        &[
            "SERVICE",
            "ADDRESS (nlb.port-manager/address)",
            "PROTOCOL",
            "STATUS",
            "TARGETS",
        ],
        &cells,
    )
}
