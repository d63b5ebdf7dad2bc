//! Example Services: applied with kubectl and waited for (`kubectl nlb-pool`'s library shows
//! them: testbed/src/bin/local_stack.rs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use nlb_port_pool::annotations;

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
}
