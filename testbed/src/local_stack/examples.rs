//! Example Services: applied with kubectl, waited for, and shown as a table of
//! Service -> `NLB_DNS:port`, protocol, targets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use nlb_port_pool::annotations::{self, AllocationRecord};

/// A Service of the manifests, `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The certificate ARN the examples name for their TLS room, which [`apply`] replaces.
pub const CERTIFICATE_PLACEHOLDER: &str = "arn:aws:acm:REGION:ACCOUNT:certificate/EXAMPLE";

/// Writes `file` to `dir` (same name), each `(from, to)` of `substitutions` replaced, and
/// returns the copy's path: the manifests as applied, for the user to edit and apply again.
pub fn substituted(file: &Path, substitutions: &[(&str, &str)], dir: &Path) -> Result<PathBuf> {
    let mut text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for (from, to) in substitutions {
        text = text.replace(from, to);
    }
    let name = file
        .file_name()
        .context("the examples' path names no file")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join(name);
    std::fs::write(&copy, text).with_context(|| format!("writing {}", copy.display()))?;
    Ok(copy)
}

/// `kubectl apply -f file`; returns the opted-in Services it applied.
pub async fn apply(kubeconfig: &Path, file: &Path) -> Result<Vec<ServiceKey>> {
    let out = tokio::process::Command::new("kubectl")
        .arg("apply")
        .arg("-f")
        .arg(file)
        .args(["-o", "json"])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .context("running kubectl (is it on PATH?)")?;
    if !out.status.success() {
        bail!(
            "kubectl apply -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let applied: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("kubectl apply -o json printed no JSON")?;
    Ok(opted_in(&applied))
}

/// The opted-in Services of `kubectl apply -o json` output (a List, or one object).
fn opted_in(applied: &serde_json::Value) -> Vec<ServiceKey> {
    let items = match applied["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![applied.clone()],
    };
    items
        .iter()
        .filter(|o| o["kind"] == "Service")
        .filter(|o| o["metadata"]["annotations"][annotations::AUTO_ASSIGN] == "true")
        .map(|o| ServiceKey {
            namespace: o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
            name: o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

/// Waits until every Service of `keys` carries a `status` annotation that is not `Pending`
/// (normally `Allocated`); returns them, or fails naming those still waiting.
pub async fn wait_settled(
    client: &kube::Client,
    keys: &[ServiceKey],
    timeout: Duration,
) -> Result<Vec<Service>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut settled = Vec::new();
        let mut waiting = Vec::new();
        for k in keys {
            let api: Api<Service> = Api::namespaced(client.clone(), &k.namespace);
            let svc = api.get_opt(&k.name).await?;
            let status = svc
                .as_ref()
                .and_then(|s| s.metadata.annotations.as_ref())
                .and_then(|a| a.get(annotations::STATUS))
                .cloned();
            match (svc, status) {
                (Some(s), Some(st)) if !st.starts_with("Pending") => settled.push(s),
                (_, st) => waiting.push(format!("{k} ({})", st.unwrap_or("no status".into()))),
            }
        }
        if waiting.is_empty() {
            return Ok(settled);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not allocated after {timeout:?}: {}", waiting.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One row of the table: one listener of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `namespace/name` and the Service port's name.
    pub service: String,
    /// `NLB_DNS:port`, or the Service's status when it has no listener.
    pub address: String,
    /// `TCP`, `UDP`, `TCP_UDP`, ...
    pub protocol: String,
    /// The target group's `ip:port` targets.
    pub targets: Vec<String>,
}

/// The rows of `services` (a per-pod Service's: its pods'), with targets read from moto.
pub async fn rows(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    client: &kube::Client,
    services: &[Service],
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for svc in services {
        let key = format!(
            "{}/{}",
            svc.metadata.namespace.as_deref().unwrap_or_default(),
            svc.metadata.name.as_deref().unwrap_or_default()
        );
        let notes = svc.metadata.annotations.clone().unwrap_or_default();
        if notes.contains_key(annotations::PODS) {
            out.extend(pod_rows(elb, client, svc, &key).await?);
            continue;
        }
        let records: Vec<AllocationRecord> = notes
            .get(annotations::ALLOCATIONS)
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        if records.is_empty() {
            let status = notes.get(annotations::STATUS).cloned().unwrap_or_default();
            out.push(Row {
                service: key,
                address: status,
                protocol: "-".into(),
                targets: vec![],
            });
            continue;
        }
        for r in records {
            out.push(Row {
                service: format!("{key} ({})", r.name),
                address: format!("{}:{}", r.dns, r.port),
                protocol: if r.tls {
                    "TLS".into()
                } else {
                    r.protocol.to_string()
                },
                targets: targets(elb, &r.target_group_arn).await?,
            });
        }
    }
    Ok(out)
}

/// The rows of a per-pod Service: one per listener of each of its pods.
async fn pod_rows(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    client: &kube::Client,
    svc: &Service,
    key: &str,
) -> Result<Vec<Row>> {
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let selector: Vec<String> = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(&selector.join(",")))
        .await
        .with_context(|| format!("listing the pods of {key}"))?;
    let mut out = Vec::new();
    for pod in pods.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let notes = pod.metadata.annotations.unwrap_or_default();
        let records: Vec<AllocationRecord> = notes
            .get(annotations::ALLOCATIONS)
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        for r in records {
            out.push(Row {
                service: format!("{key} pod {name} ({})", r.name),
                address: format!("{}:{}", r.dns, r.port),
                protocol: if r.tls {
                    "TLS".into()
                } else {
                    r.protocol.to_string()
                },
                targets: targets(elb, &r.target_group_arn).await?,
            });
        }
    }
    Ok(out)
}

/// The `ip:port` targets of a target group, sorted.
pub async fn targets(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
) -> Result<Vec<String>> {
    let health = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .with_context(|| format!("DescribeTargetHealth of {target_group_arn}"))?;
    let mut out: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let t = d.target()?;
            Some(format!("{}:{}", t.id()?, t.port()?))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The rows as an aligned text table with a header.
pub fn render(rows: &[Row]) -> String {
    let header = Row {
        service: "SERVICE".into(),
        address: "ADDRESS (nlb.port-manager/address)".into(),
        protocol: "PROTOCOL".into(),
        targets: vec!["TARGETS".into()],
    };
    let all: Vec<&Row> = std::iter::once(&header).chain(rows).collect();
    let w1 = all.iter().map(|r| r.service.len()).max().unwrap_or(0);
    let w2 = all.iter().map(|r| r.address.len()).max().unwrap_or(0);
    let w3 = all.iter().map(|r| r.protocol.len()).max().unwrap_or(0);
    all.iter()
        .map(|r| {
            let targets = if r.targets.is_empty() {
                "(none)".to_owned()
            } else {
                r.targets.join(", ")
            };
            format!(
                "{:w1$}  {:w2$}  {:w3$}  {targets}",
                r.service, r.address, r.protocol
            )
            .trim_end()
            .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_opted_in_services_kubectl_applied() {
        let applied = serde_json::json!({"kind": "List", "items": [
            {"kind": "Namespace", "metadata": {"name": "games"}},
            {"kind": "Service", "metadata": {"name": "a", "namespace": "games",
                "annotations": {"nlb.port-manager/auto-assign": "true"}}},
            {"kind": "Service", "metadata": {"name": "b", "namespace": "games"}},
            {"kind": "EndpointSlice", "metadata": {"name": "a-1", "namespace": "games"}},
        ]});
        let keys = opted_in(&applied);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].to_string(), "games/a");
    }

    #[test]
    fn renders_an_aligned_table() {
        let rows = [
            Row {
                service: "games/a (game)".into(),
                address: "nlb-1.elb.amazonaws.com:30000".into(),
                protocol: "TCP".into(),
                targets: vec!["10.0.0.1:7777".into(), "10.0.0.2:7777".into()],
            },
            Row {
                service: "games/b".into(),
                address: "Error: no pool".into(),
                protocol: "-".into(),
                targets: vec![],
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("SERVICE"));
        assert!(lines[1].ends_with("10.0.0.1:7777, 10.0.0.2:7777"), "{text}");
        assert!(lines[2].ends_with("(none)"), "{text}");
        let column = lines[0].find("ADDRESS").expect("header");
        assert_eq!(lines[1].find("nlb-1"), Some(column));
    }
}
